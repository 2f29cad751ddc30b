"""Instructor and maintainer tooling of sbi-course, kept out of the ``sbi_course`` library.

Run from the course root (``python -m tools.<name>``); students' notebooks never import it.
"""
