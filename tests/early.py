"""A child process whose output goes to temporary files, so that it can start when collection
ends (a test module's ``start_early``, tests/conftest.py) and be read when its test is reached."""

import subprocess
import tempfile


class Child:
    def __init__(self, argv, **kwargs):
        self.out, self.err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err, text=True, **kwargs)

    def poll(self):
        return self.proc.poll()

    def kill(self):
        self.proc.kill()

    def wait(self, timeout=None):
        return self.proc.wait(timeout)

    def result(self, timeout: float) -> subprocess.CompletedProcess:
        """Waits for the child (killed after ``timeout`` s: TimeoutExpired) and returns what
        ``subprocess.run(..., capture_output=True, text=True)`` would have."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(f.read())
            f.close()
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, *texts)
