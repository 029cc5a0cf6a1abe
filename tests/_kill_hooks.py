"""A hook that SIGKILLs its own training process while a checkpoint is
being written (used by tests/test_kill_safety.py in a subprocess)."""
import os
import signal
import threading
import time

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """When the checkpoint of iteration ``at_iter`` is being saved, kill the
    process (SIGKILL) as soon as a file of that checkpoint has bytes on
    disk, whatever its name (the final or a temporary one).

    Args:
        at_iter (int): The checkpoint's iteration.
    """

    def __init__(self, at_iter: int):
        self.at_iter = at_iter

    def before_save_checkpoint(self, runner, checkpoint):
        if checkpoint['meta'].get('iter') != self.at_iter:
            return
        tag = f'iter_{self.at_iter}.pth'
        folder = runner.work_dir

        def watch():
            deadline = time.time() + 60
            while time.time() < deadline:
                for entry in os.listdir(folder):
                    path = os.path.join(folder, entry)
                    try:
                        if tag in entry and os.path.getsize(path) > 0:
                            with open(os.path.join(folder, 'killed_at'),
                                      'w') as f:
                                f.write(entry)
                            os.kill(os.getpid(), signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.0005)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=watch, daemon=True).start()
