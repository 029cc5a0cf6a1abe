"""A spawned study worker ends when the study's main process is killed
(:func:`possec.analysis.study.run.stop_with_parent`), instead of training
on as an orphan."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _child(ready: str) -> None:  # the spawned "worker"
    from possec.analysis.study.run import stop_with_parent
    stop_with_parent()
    open(ready, 'w').close()
    time.sleep(120)


def _gone(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/status') as f:
            state = next(line for line in f if line.startswith('State:'))
    except FileNotFoundError:
        return True
    return ' Z ' in state or '(zombie)' in state  # nobody reaped it: ended


def _wait(cond, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='parent-death signal is Linux only')
@pytest.mark.parametrize('protect', [True, False])
def test_a_worker_ends_when_the_main_process_is_killed(tmp_path, protect):
    ready = str(tmp_path / 'ready')
    target = '_child' if protect else '_unprotected_child'
    parent = subprocess.Popen([
        sys.executable, '-c',
        'import sys, time, multiprocessing as mp\n'
        f'sys.path.insert(0, {REPO!r})\n'
        f'from tests.test_study_workers import {target} as child\n'
        'p = mp.get_context("spawn").Process(target=child, '
        f'args=({ready!r},))\n'
        'p.start(); print(p.pid, flush=True); time.sleep(120)\n'],
        stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert _wait(lambda: osp.exists(ready), 60), 'the child never started'
        parent.send_signal(signal.SIGKILL)  # no cleanup by the parent
        parent.wait(10)
        ended = _wait(lambda: _gone(pid), 10)
        # the control (no stop_with_parent) shows the test can fail
        assert ended is protect
    finally:
        parent.kill()
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def _unprotected_child(ready: str) -> None:
    open(ready, 'w').close()
    time.sleep(120)
