# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host locks that let two runs of a job take turns: ``flock`` on a file, waited for with a limit, naming who holds it.

Used where two runs at once would undo each other's work: the MariaDB log archive (``binlog.repo_lock``), the
scratch database of restores and restore-level verifications (``backup.scratch_lock``), and the live database, which
backups read (shared) while a restore's swap waits, and which a restore swaps (exclusive) while backups wait
(``backup.live_lock``). The deploy lock is another
thing (``release.py``: a file that outlives the run, broken on purpose). An ``flock`` goes with the process, so a
killed run frees it. Stdlib only.
"""

import contextlib
import os
import time


def open_lock(path):
    """The lock file's descriptor (created 0600, never through a symbolic link); OSError when it cannot be opened."""
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)


@contextlib.contextmanager
def held(fd, wait_s, busy, note=None, sleep=time.sleep, clock=time.time, poll_s=0.2, shared=False):
    """Hold ``fd``'s exclusive ``flock`` (``shared``: a shared one, which others may hold at once but not beside an
    exclusive one), waiting up to ``wait_s`` seconds for it; after that, raise what ``busy(waited_s, holder)``
    returns (``holder``: what the file says, or "another run"). ``note`` (who holds it) is written into the file
    while held. The descriptor is closed on the way out, which releases it."""
    import fcntl

    try:
        started = clock()
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock() - started >= wait_s:
                    os.lseek(fd, 0, os.SEEK_SET)
                    holder = os.read(fd, 512).decode("utf-8", "replace").strip() or "another run"
                    raise busy(int(clock() - started), holder) from None
                sleep(poll_s)
        if note:
            os.ftruncate(fd, 0)
            os.write(fd, note.encode("utf-8"))
        yield
    finally:
        os.close(fd)
