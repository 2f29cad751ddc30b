"""``nbgrader zip_collect`` that refuses a second upload for one student and goes on.

nbgrader's file-name collector takes every file whose name matches; two uploads that map to the
same student and notebook either replace each other (a second upload under another student's id
becomes that student's submission) or stop the collection. :class:`UniqueCollector`, set in
``nbgrader_config.py``, keeps the first upload for each (student, notebook), refuses the others
with a warning that names both files, and lets the class be collected.
"""

from __future__ import annotations

from nbgrader.plugins.zipcollect import FileNameCollectorPlugin

from tools.grading.submissions import _key

__all__ = ["UniqueCollector"]


class UniqueCollector(FileNameCollectorPlugin):
    """A ``FileNameCollectorPlugin`` that refuses duplicate uploads (see the module)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: dict[tuple[str, str], str] = {}
        self.refused: list[str] = []

    def collect(self, submitted_file: str):
        info = super().collect(submitted_file)
        if not info:
            return info
        stem = info["file_id"].rsplit(".", 1)[0]
        key = (info["student_id"], _key(stem))
        if key in self.seen:
            message = (
                f"refused a second upload for student {info['student_id']!r}, notebook "
                f"{stem!r}: {submitted_file} (kept {self.seen[key]}); check it by hand"
            )
            self.refused.append(message)
            self.log.warning(message)
            return None
        self.seen[key] = submitted_file
        return info
