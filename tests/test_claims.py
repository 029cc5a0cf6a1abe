"""The claim contract (possec.analysis.study.claims): N worker processes
over one folder run every unit exactly once, also when one is SIGKILLed
mid-unit."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from .conftest import ROOT

CLAIMS = osp.join(ROOT, 'possec', 'analysis', 'study', 'claims.py')
UNITS = [f'cell-{i}' for i in range(7)]

# A worker loads claims.py alone (no torch/mmseg import: starts in ms). Each
# unit logs "start PID" and "end PID" lines and writes its result file after
# a short sleep, so an execution is visible whether or not it completed.
WORKER = textwrap.dedent('''
    import importlib.util, json, os, sys, time
    spec = importlib.util.spec_from_file_location('claims', sys.argv[1])
    claims = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(claims)
    folder, logs, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
    units = sys.argv[5].split(',')
    pid = os.getpid()

    def unit(name):
        with open(os.path.join(logs, name + '.log'), 'a') as f:
            f.write(f'start {pid}\\n')
        time.sleep(seconds)
        with open(os.path.join(logs, name + '.out'), 'w') as f:
            f.write(name)
        with open(os.path.join(logs, name + '.log'), 'a') as f:
            f.write(f'end {pid}\\n')

    # stale after 4 s: by the contract a worker silent that long is taken
    # over, and on 2 loaded cores a process starting up beside the suite's
    # workers was seen silent for over 1.5 s (a unit then ran twice)
    ran = claims.run_units(folder, units, unit, stale_after=4.0,
                           heartbeat=0.2, poll=0.1)
    print(json.dumps(dict(pid=pid, ran=ran)))
''')


def _start(tmp_path, seconds, n):
    folder, logs = tmp_path / 'claims', tmp_path / 'logs'
    logs.mkdir(exist_ok=True)
    return [subprocess.Popen(
        [sys.executable, '-c', WORKER, CLAIMS, str(folder), str(logs),
         str(seconds), ','.join(UNITS)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for _ in range(n)]


def _lines(tmp_path, unit):
    path = tmp_path / 'logs' / f'{unit}.log'
    return path.read_text().split() if path.exists() else []


def _check_exactly_once(tmp_path, results):
    ran = [u for r in results for u in r['ran']]
    for unit in UNITS:
        words = _lines(tmp_path, unit)
        ends = [words[i + 1] for i in range(0, len(words), 2)
                if words[i] == 'end']
        assert len(ends) == 1, f'{unit} completed {len(ends)} times'
        assert (tmp_path / 'claims' / f'{unit}.done').is_file()
        record = json.loads((tmp_path / 'claims' / f'{unit}.done')
                            .read_text())
        assert record['worker'].endswith(f':{ends[0]}')
    return ran


@pytest.mark.parametrize('n', [2, 3])
def test_workers_run_each_unit_once(tmp_path, n):
    procs = _start(tmp_path, 0.3, n)
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    ran = _check_exactly_once(tmp_path, results)
    assert sorted(ran) == sorted(UNITS)
    # every worker took part (7 units of 0.3 s, claimed one at a time)
    assert all(r['ran'] for r in results)
    for unit in UNITS:  # nobody started a unit someone else had claimed
        assert len(_lines(tmp_path, unit)) == 4


def test_killed_worker_unit_is_taken_over(tmp_path):
    procs = _start(tmp_path, 1.0, 3)
    victim, unit = None, None
    deadline = time.time() + 60
    while victim is None and time.time() < deadline:
        for name in UNITS:
            words = _lines(tmp_path, name)
            if words[:1] == ['start'] and len(words) == 2:
                victim, unit = int(words[1]), name
                break
        time.sleep(0.02)
    assert victim is not None, 'no worker started a unit'
    os.kill(victim, signal.SIGKILL)
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        if proc.pid == victim:
            assert proc.returncode == -signal.SIGKILL
            continue
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    # the unit was started by the victim, never finished by it, and run to
    # completion by exactly one other worker after its claim went stale
    words = _lines(tmp_path, unit)
    assert words[:2] == ['start', str(victim)]
    assert ['end', str(victim)] not in [words[i:i + 2]
                                       for i in range(0, len(words), 2)]
    claims = sorted(os.listdir(tmp_path / 'claims'))
    assert f'{unit}.claim.0' in claims and f'{unit}.claim.1' in claims
    ran = _check_exactly_once(tmp_path, results + [dict(ran=[])])
    assert unit in ran
    assert not set(ran) - set(UNITS)


def test_finished_unit_never_reruns_and_bad_names(tmp_path):
    spec_globals = {}
    exec(compile(open(CLAIMS).read(), CLAIMS, 'exec'), spec_globals)
    run_units = spec_globals['run_units']
    calls = []
    folder = str(tmp_path / 'c')
    assert run_units(folder, ['a', 'b'], calls.append, stale_after=1,
                     heartbeat=0.1) == ['a', 'b']
    assert run_units(folder, ['a', 'b', 'c'], calls.append, stale_after=1,
                     heartbeat=0.1) == ['c']
    assert calls == ['a', 'b', 'c']

    def boom(name):
        raise RuntimeError('unit failed')

    with pytest.raises(RuntimeError, match='unit failed'):
        run_units(folder, ['d'], boom, stale_after=1, heartbeat=0.1)
    # a failed unit is not done and its claim is released: a rerun runs it
    assert spec_globals['done_units'](folder, ['a', 'd']) == ['a']
    assert run_units(folder, ['d'], calls.append, stale_after=1,
                     heartbeat=0.1) == ['d']
    with pytest.raises(ValueError, match='cannot be a file name'):
        run_units(folder, ['../x'], calls.append)
    with pytest.raises(ValueError, match='stale_after'):
        run_units(folder, ['x'], calls.append, stale_after=1, heartbeat=1)


def test_waiting_and_takeover_are_said(tmp_path):
    """A worker says whose claims it waits for and for how long, and when
    it takes over a stale claim, with the worker named."""
    import re
    import threading

    from possec.analysis.study.claims import ClaimBoard
    holder = ClaimBoard(str(tmp_path), worker='A', stale_after=1.0,
                        heartbeat=0.2)
    lines = []
    waiter = ClaimBoard(str(tmp_path), worker='B', stale_after=1.0,
                        heartbeat=0.2, log=lines.append)
    claim = holder.try_claim('u')  # live: its heartbeat runs
    timer = threading.Timer(0.5, holder.mark_done, (claim, ))
    timer.start()
    assert waiter.run(['u'], lambda name: None, poll=0.05) == []
    timer.join()
    assert lines[0].startswith('waiting for 1 unit(s) other workers hold: '
                               'u by A (heartbeat ')
    assert lines[0].endswith('a claim without heartbeat for 1 s is taken '
                             'over')
    assert re.fullmatch(r"waited \d+ s for other workers' units", lines[-1])
    lines.clear()
    holder.try_claim('v').stop()  # a dead worker's claim: no heartbeat
    assert waiter.run(['v'], lambda name: None, poll=0.05) == ['v']
    taken = [line for line in lines if line.startswith('taking over')]
    assert len(taken) == 1 and re.fullmatch(
        r'taking over v from A: no heartbeat for \d+ s', taken[0])


def test_claim_made_while_another_worker_looks_wins(tmp_path):
    """Worker A claims a unit just after worker B listed the folder and saw
    it unclaimed: B must not get a claim of its own (it would create the
    generation after A's and run the unit a second time)."""
    from possec.analysis.study.claims import ClaimBoard
    a = ClaimBoard(str(tmp_path), worker='A', stale_after=4.0,
                   heartbeat=0.2)
    b = ClaimBoard(str(tmp_path), worker='B', stale_after=4.0,
                   heartbeat=0.2)
    listing = b._generation
    held = []

    def listing_then_a_claims(name):
        gen = listing(name)
        if not held:  # A's claim lands right after B's first look
            held.append(a.try_claim(name))
        return gen

    b._generation = listing_then_a_claims
    assert b.try_claim('u') is None
    assert held[0] is not None and held[0].gen == 0
    assert sorted(os.listdir(tmp_path)) == ['u.claim.0']
    assert a.mark_done(held[0])
