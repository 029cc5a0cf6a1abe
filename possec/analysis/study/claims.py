"""Workers sharing one folder of units: each unit runs exactly once.

N worker processes (on one machine, or N jobs of a cluster array on a
shared filesystem) call :func:`run_units` over the same folder and the same
list of unit names; together they run every unit once. The contract, per
unit ``NAME``, with only these files in ``folder``:

- ``NAME.claim.G`` (G = 0, 1, ...): generation G of the claim. A worker
  claims a unit by creating the next generation with
  ``os.open(O_CREAT | O_EXCL)``, atomic on local filesystems and NFSv3+, so
  exactly one worker wins each generation. The highest generation is the
  live claim; its holder touches it (mtime) every ``heartbeat`` seconds
  from a daemon thread.
- A claim is **stale** when its mtime is older than ``stale_after`` seconds
  (default 120 s, heartbeat every 10 s): its worker died (``kill -9``, a
  lost node) or hung. Another worker then takes the unit over by creating
  generation G+1; the dead worker's partial output is the unit's own
  business to overwrite (write results to temporary names, see
  :func:`possec.fileio.atomic_path`). Clocks of hosts sharing the folder
  must agree to well within ``stale_after``.
- ``NAME.done``: the unit finished. It is published with ``os.link`` of a
  complete temporary file (exclusive and atomic: it exists complete or not
  at all), only after the unit's function returned. A unit with ``.done``
  is never run again; a unit without it is never counted as finished, so a
  half-finished unit (its worker killed) is neither counted nor skipped.

Example (as the study uses it)::

    from possec.analysis.study.claims import run_units, done_units

    def run_cell(name):            # writes its results atomically
        ...
    ran = run_units('work_dirs/study/claims', cell_names, run_cell)
    finished = done_units('work_dirs/study/claims', cell_names)

A worker returns when every unit is done; it waits (polling every
``poll`` seconds) while other live workers hold the last units, and takes
over units whose claims go stale. A unit function that raises is not
marked done: its claim is released (deleted by generation) so that another
worker (or a rerun) retries it, and the exception propagates.
"""
import json
import os
import os.path as osp
import re
import socket
import tempfile
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional

STALE_AFTER = 120.0
HEARTBEAT = 10.0
_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+=-]*$')
_CLAIM_RE = re.compile(r'^(?P<name>.+)\.claim\.(?P<gen>\d+)$')


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or \
            '.claim.' in name or name.endswith('.done'):
        raise ValueError(
            f'unit name {name!r} cannot be a file name here: expected '
            f'letters, digits and ._+=- (starting with a letter or digit), '
            f'without ".claim." or a ".done" ending')
    return name


def worker_id() -> str:
    """``host:pid``, the default identity of this worker."""
    return f'{socket.gethostname()}:{os.getpid()}'


class Claim:
    """A claim held by this worker on one unit; keeps its heartbeat.

    Args:
        board (ClaimBoard): The folder's board.
        name (str): The unit.
        gen (int): The generation this worker created.
    """

    def __init__(self, board: 'ClaimBoard', name: str, gen: int):
        self.board = board
        self.name = name
        self.gen = gen
        self.path = board._claim_path(name, gen)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f'claim-heartbeat-{name}')
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.board.heartbeat):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def is_current(self) -> bool:
        """Whether no other worker has taken the unit over."""
        return self.board._generation(self.name) == self.gen

    def stop(self) -> None:
        """Stop the heartbeat (the claim file stays)."""
        self._stop.set()
        self._thread.join()

    def release(self) -> None:
        """Stop the heartbeat and delete this generation's claim file, so
        that the unit can be claimed again at once."""
        self.stop()
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


class ClaimBoard:
    """The claims and completion markers of one folder.

    Args:
        folder (str): The shared folder (created if missing).
        worker (str, optional): This worker's identity, written into its
            claims. Default: ``host:pid``.
        stale_after (float): Seconds without a heartbeat after which a
            claim is taken over. Default: 120.
        heartbeat (float): Seconds between heartbeats; must be well below
            ``stale_after``. Default: 10.
        log (callable, optional): Receives a line when this worker starts
            and stops waiting for units other workers hold (whose, since
            when, how long) and when it takes over a stale claim.
            Default: None (silent).
    """

    def __init__(self, folder: str, worker: Optional[str] = None,
                 stale_after: float = STALE_AFTER,
                 heartbeat: float = HEARTBEAT,
                 log: Optional[Callable[[str], None]] = None):
        if not 0 < heartbeat * 2 <= stale_after:
            raise ValueError(
                f'heartbeat {heartbeat} s and stale_after {stale_after} s: '
                f'expected 0 < 2 x heartbeat <= stale_after, so that a live '
                f'worker is never taken for a dead one')
        self.folder = folder
        self.worker = worker or worker_id()
        self.stale_after = float(stale_after)
        self.heartbeat = float(heartbeat)
        self.log = log or (lambda line: None)
        os.makedirs(folder, exist_ok=True)

    # ----- paths and state -------------------------------------------------
    def _claim_path(self, name: str, gen: int) -> str:
        return osp.join(self.folder, f'{name}.claim.{gen}')

    def _done_path(self, name: str) -> str:
        return osp.join(self.folder, f'{name}.done')

    def _generation(self, name: str) -> int:
        """The highest claim generation of ``name``; -1 when unclaimed."""
        gens = [-1]
        for entry in os.listdir(self.folder):
            match = _CLAIM_RE.match(entry)
            if match and match.group('name') == name:
                gens.append(int(match.group('gen')))
        return max(gens)

    def is_done(self, name: str) -> bool:
        """Whether ``name`` finished (its ``.done`` marker exists)."""
        return osp.isfile(self._done_path(_check_name(name)))

    def forget(self, name: str) -> bool:
        """Remove the ``.done`` marker of ``name`` so that it runs again
        (its output was deleted); returns whether there was one."""
        try:
            os.remove(self._done_path(_check_name(name)))
            return True
        except FileNotFoundError:
            return False

    def done_record(self, name: str) -> Optional[dict]:
        """The JSON record of a finished unit (worker, generation, times),
        or None when it has not finished."""
        try:
            with open(self._done_path(_check_name(name))) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def holder(self, name: str) -> Optional[Dict]:
        """The live claim of ``name``: dict(gen, age, worker), or None."""
        return self._holder_at(name, self._generation(_check_name(name)))

    def _holder_at(self, name: str, gen: int) -> Optional[Dict]:
        """The claim of generation ``gen`` of ``name`` (None when there is
        none: ``gen`` < 0, or its file was released)."""
        if gen < 0:
            return None
        path = self._claim_path(name, gen)
        try:
            age = time.time() - os.stat(path).st_mtime
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        try:
            worker = json.loads(text).get('worker') if text else None
        except ValueError:
            worker = None
        return dict(gen=gen, age=age, worker=worker)

    # ----- claiming --------------------------------------------------------
    def try_claim(self, name: str) -> Optional[Claim]:
        """Claim ``name`` if it is unfinished and unclaimed or stale.

        Returns:
            Claim | None: The claim (its heartbeat running), or None when the
            unit is done or another live worker holds it.
        """
        _check_name(name)
        if self.is_done(name):
            return None
        # One look at the folder decides which generation to create: a
        # second listing could see a claim another worker made meanwhile
        # and create the generation after it, running the unit twice.
        seen = self._generation(name)
        info = self._holder_at(name, seen)
        if info is None:
            gen = seen + 1
        elif info['age'] > self.stale_after:
            gen = info['gen'] + 1
            self.log(f'taking over {name} from {info["worker"]}: no '
                     f'heartbeat for {info["age"]:.0f} s')
        else:
            return None
        path = self._claim_path(name, gen)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None  # another worker won this generation
        with os.fdopen(fd, 'w') as f:
            json.dump(dict(worker=self.worker, gen=gen,
                           claimed=time.time()), f)
        if self.is_done(name):  # finished between our check and the claim
            os.remove(path)
            return None
        return Claim(self, name, gen)

    def mark_done(self, claim: Claim, **record) -> bool:
        """Publish ``claim``'s unit as finished and stop its heartbeat.

        Args:
            claim (Claim): The claim held while the unit ran.
            **record: Extra JSON-serialisable fields for the marker.

        Returns:
            bool: True when this call published the marker, False when the
            unit had been marked done already (by a worker that took over a
            claim wrongly judged stale); the marker is never overwritten.
        """
        claim.stop()
        record.update(worker=self.worker, gen=claim.gen, finished=time.time())
        fd, tmp = tempfile.mkstemp(dir=self.folder,
                                   prefix=f'.{claim.name}.done.',
                                   suffix='.tmp')
        try:
            with os.fdopen(fd, 'w') as f:
                json.dump(record, f)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, self._done_path(claim.name))
                published = True
            except FileExistsError:
                published = False
        finally:
            os.remove(tmp)
        return published

    # ----- the worker loop -------------------------------------------------
    def run(self, names: Iterable[str], fn: Callable[[str], object],
            poll: float = 1.0) -> List[str]:
        """Run ``fn(name)`` for every unit not done, claiming each first;
        return when all are done.

        Args:
            names (Iterable[str]): The units, the same list in every worker.
            fn (callable): Runs one unit; it must write its own results
                atomically. Its return value is ignored.
            poll (float): Seconds between looks while other workers hold
                the remaining units. Default: 1.

        Returns:
            list[str]: The units this worker ran to completion.
        """
        names = [_check_name(n) for n in names]
        ran = []
        waiting = None  # when this worker started waiting
        while True:
            pending = [n for n in names if not self.is_done(n)]
            if not pending:
                if waiting is not None:
                    self.log(f'waited {time.time() - waiting:.0f} s for '
                             f'other workers\' units')
                return ran
            progressed = False
            for name in pending:
                claim = self.try_claim(name)
                if claim is None:
                    continue
                progressed = True
                try:
                    fn(name)
                except BaseException:
                    claim.release()
                    raise
                if self.mark_done(claim):
                    ran.append(name)
            if not progressed:
                if waiting is None:
                    waiting = time.time()
                    self.log(self._waiting_line(pending))
                time.sleep(poll)
            elif waiting is not None:
                self.log(f'waited {time.time() - waiting:.0f} s for other '
                         f'workers\' units')
                waiting = None

    def _waiting_line(self, pending: List[str]) -> str:
        """Whose claims this worker waits for, and for how long at most."""
        held = []
        for name in pending:
            info = self.holder(name)
            if info is not None:
                held.append(f'{name} by {info["worker"]} (heartbeat '
                            f'{info["age"]:.0f} s ago)')
        shown = ', '.join(held[:3])
        if len(held) > 3:
            shown += f' and {len(held) - 3} more'
        return (f'waiting for {len(pending)} unit(s) other workers hold: '
                f'{shown}; a claim without heartbeat for '
                f'{self.stale_after:.0f} s is taken over')


def run_units(folder: str, names: Iterable[str],
              fn: Callable[[str], object],
              stale_after: float = STALE_AFTER,
              heartbeat: float = HEARTBEAT,
              poll: float = 1.0,
              worker: Optional[str] = None) -> List[str]:
    """Run every unit of ``names`` exactly once across all workers calling
    this over the same ``folder`` (see the module docstring).

    Args:
        folder (str): The shared claims folder.
        names (Iterable[str]): Unit names (file-name safe).
        fn (callable): ``fn(name)`` runs one unit.
        stale_after (float): Seconds without heartbeat before a claim is
            taken over. Default: 120.
        heartbeat (float): Seconds between heartbeats. Default: 10.
        poll (float): Seconds between looks while waiting. Default: 1.
        worker (str, optional): Identity written into claims. Default:
            ``host:pid``.

    Returns:
        list[str]: The units this worker ran.
    """
    board = ClaimBoard(folder, worker=worker, stale_after=stale_after,
                       heartbeat=heartbeat)
    return board.run(names, fn, poll=poll)


def done_units(folder: str, names: Iterable[str]) -> List[str]:
    """The units of ``names`` that finished (have a ``.done`` marker)."""
    if not osp.isdir(folder):
        return []
    return [n for n in names
            if osp.isfile(osp.join(folder, f'{_check_name(n)}.done'))]
