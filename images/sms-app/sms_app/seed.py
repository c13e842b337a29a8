"""Deterministic demo data: the same N always gives the same rows; loading twice adds nothing."""

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from . import revision_at_least
from .models import Attendance, Course, Enrollment, Grade, Student

FIRST = ["Ada", "Ben", "Chloé", "Dmitri", "Elif", "Farah", "Gustavo", "Hana", "Ivan", "Jun", "Kwame", "Lena",
         "Mateo", "Nia", "Oskar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoë"]
LAST = ["Adeyemi", "Bauer", "Chen", "Dubois", "Eriksen", "Fernández", "García", "Haddad", "Ivanova", "Jensen",
        "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Patel", "Rossi", "Schmidt", "Tanaka", "Wójcik"]
COURSES = [("MATH101", "Algebra I", 4), ("ENG101", "English Literature", 3), ("SCI101", "General Science", 4),
           ("HIST101", "World History", 3), ("ART101", "Visual Arts", 2), ("CS101", "Introduction to Computing", 3)]
TERM = "2026-FALL"
FIRST_DAY = date(2026, 9, 7)
LETTERS = [(90, "A"), (80, "B"), (70, "C"), (60, "D"), (0, "F")]


def letter_for(score):
    return next(letter for floor, letter in LETTERS if score >= floor)


def seed(session, students):
    """Load ``students`` demo students (numbers S00001…); returns counts of what was added."""
    added = {"students": 0, "courses": 0, "enrollments": 0, "grades": 0, "attendance": 0}
    courses = {c.code: c for c in session.scalars(select(Course))}
    for code, title, credits in COURSES:
        if code not in courses:
            courses[code] = Course(code=code, title=title, credits=credits)
            session.add(courses[code])
            added["courses"] += 1
    session.flush()
    course_list = [courses[code] for code, _, _ in COURSES]

    wanted = ["S%05d" % n for n in range(1, students + 1)]
    existing = set(session.scalars(select(Student.student_number).where(Student.student_number.in_(wanted))))
    for n, number in enumerate(wanted, start=1):
        if number in existing:
            continue
        # Seeded per student (demo data, not secrets), so N=10 and N=50 agree on the first 10 students.
        rng = random.Random("rollcall-seed-%d" % n)  # noqa: S311
        first, last = rng.choice(FIRST), rng.choice(LAST)
        student = Student(student_number=number, first_name=first, last_name=last,
                          email="%s.%s.%d@students.example.edu" % (first.lower(), last.lower().replace("'", ""), n),
                          grade_level=rng.randint(9, 12),
                          enrolled_on=date(2026, 9, 1) - timedelta(days=365 * rng.randint(0, 3)))
        if revision_at_least("0002"):
            student.full_name = "%s %s" % (first, last)
        session.add(student)
        session.flush()
        added["students"] += 1
        for course in rng.sample(course_list, 3):
            session.add(Enrollment(student_id=student.id, course_id=course.id, term=TERM))
            score = Decimal(rng.randint(5500, 10000)) / 100
            session.add(Grade(student_id=student.id, course_id=course.id, term=TERM, score=score,
                              letter=letter_for(score)))
            added["enrollments"] += 1
            added["grades"] += 1
            for week in range(5):
                status = rng.choices(["present", "absent", "late", "excused"], weights=[85, 6, 6, 3])[0]
                session.add(Attendance(student_id=student.id, course_id=course.id,
                                       day=FIRST_DAY + timedelta(days=7 * week), status=status))
                added["attendance"] += 1
    session.commit()
    added["total_students"] = session.scalar(select(func.count()).select_from(Student))
    return added
