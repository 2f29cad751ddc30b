"""``python -m sbi_course.grading``: see :mod:`sbi_course.grading.cli`."""

import sys

from sbi_course.grading.cli import main

sys.exit(main())
