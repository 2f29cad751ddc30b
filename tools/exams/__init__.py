"""The course's exams: a parametrised question bank, nbgrader exams, paper copies, final grades.

Run from the course root::

    python -m tools.exams build                 # bank -> exams/source and exams/exercises
    python -m tools.exams check                 # exit 1 when the committed exams are stale
    python -m tools.exams pdf EXAM --student ID # question sheet and answer key as PDF
    python -m tools.exams key EXAM --student ID # the answer key as text
    python -m tools.exams final-grade OUT.csv   # gradebook -> course grade

Modules: :mod:`~tools.exams.items` (an item and its variants), ``bank_week1..3`` (the items),
:mod:`~tools.exams.bank` (the exams), :mod:`~tools.exams.notebook` (exam notebooks),
:mod:`~tools.exams.course` (nbgrader), :mod:`~tools.exams.paper` (PDF) and
:mod:`~tools.exams.grades` (final grade).
"""
