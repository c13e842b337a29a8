"""A clock the unit tests move by hand: call it for the time, ``sleep`` advances it (no real waiting)."""


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
