"""The SMS data model. Columns added by later releases exist only when this release's schema has them."""

from datetime import datetime

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base

from . import revision_at_least

Base = declarative_base()


def utcnow():
    return datetime.utcnow().replace(microsecond=0)


class Student(Base):
    __tablename__ = "students"
    id = Column(Integer, primary_key=True)
    student_number = Column(String(20), nullable=False, unique=True)
    first_name = Column(String(100), nullable=False)
    last_name = Column(String(100), nullable=False)
    email = Column(String(255), nullable=False, unique=True)
    grade_level = Column(Integer, nullable=False)
    enrolled_on = Column(Date, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    if revision_at_least("0002"):  # release 1.1.0
        full_name = Column(String(201))

    def as_dict(self):
        data = {
            "id": self.id, "student_number": self.student_number, "first_name": self.first_name,
            "last_name": self.last_name, "email": self.email, "grade_level": self.grade_level,
            "enrolled_on": self.enrolled_on.isoformat(), "created_at": self.created_at.isoformat() + "Z",
        }
        if revision_at_least("0002"):
            data["full_name"] = self.full_name
        return data


class Course(Base):
    __tablename__ = "courses"
    id = Column(Integer, primary_key=True)
    code = Column(String(20), nullable=False, unique=True)
    title = Column(String(200), nullable=False)
    credits = Column(Integer, nullable=False, default=1)

    def as_dict(self):
        return {"id": self.id, "code": self.code, "title": self.title, "credits": self.credits}


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("student_id", "course_id", name="uq_enrollment_student_course"),)
    id = Column(Integer, primary_key=True)
    student_id = Column(Integer, ForeignKey("students.id", ondelete="CASCADE"), nullable=False, index=True)
    course_id = Column(Integer, ForeignKey("courses.id", ondelete="CASCADE"), nullable=False, index=True)
    term = Column(String(20), nullable=False)


class Grade(Base):
    __tablename__ = "grades"
    id = Column(Integer, primary_key=True)
    student_id = Column(Integer, ForeignKey("students.id", ondelete="CASCADE"), nullable=False, index=True)
    course_id = Column(Integer, ForeignKey("courses.id", ondelete="CASCADE"), nullable=False, index=True)
    term = Column(String(20), nullable=False)
    score = Column(Numeric(5, 2), nullable=False)
    letter = Column(String(2), nullable=False)
    recorded_at = Column(DateTime, nullable=False, default=utcnow)

    def as_dict(self):
        return {"id": self.id, "student_id": self.student_id, "course_id": self.course_id, "term": self.term,
                "score": float(self.score), "letter": self.letter, "recorded_at": self.recorded_at.isoformat() + "Z"}


class Attendance(Base):
    __tablename__ = "attendance"
    __table_args__ = (UniqueConstraint("student_id", "course_id", "day", name="uq_attendance_day"),
                      Index("ix_attendance_day", "day"))
    id = Column(Integer, primary_key=True)
    student_id = Column(Integer, ForeignKey("students.id", ondelete="CASCADE"), nullable=False, index=True)
    course_id = Column(Integer, ForeignKey("courses.id", ondelete="CASCADE"), nullable=False)
    day = Column(Date, nullable=False)
    status = Column(String(10), nullable=False)  # present, absent, late, excused

    def as_dict(self):
        return {"id": self.id, "student_id": self.student_id, "course_id": self.course_id,
                "day": self.day.isoformat(), "status": self.status}


class Upload(Base):
    __tablename__ = "uploads"
    id = Column(Integer, primary_key=True)
    student_id = Column(Integer, ForeignKey("students.id", ondelete="CASCADE"), nullable=False, index=True)
    filename = Column(String(255), nullable=False)
    stored_name = Column(String(64), nullable=False, unique=True)
    size = Column(Integer, nullable=False)
    sha256 = Column(String(64), nullable=False)
    content_type = Column(String(100), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    def as_dict(self):
        return {"id": self.id, "student_id": self.student_id, "filename": self.filename, "size": self.size,
                "sha256": self.sha256, "content_type": self.content_type,
                "created_at": self.created_at.isoformat() + "Z"}


ATTENDANCE_STATUSES = ("present", "absent", "late", "excused")
