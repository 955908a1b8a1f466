"""kill -9 during saves: the checkpoint is never corrupt, and the next save into the folder
removes the temporaries of dead writers but never a live writer's.

One helper process imports fnann once and forks the writers (numpy params: no JAX backend
starts, so forking is safe); the test kills them with SIGKILL and has the helper reap them.
"""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fnann
from fnann import atomic

FORK_WRITERS = r"""
import os, sys, time, numpy as np, fnann
net = fnann.MLP([8, 32, 8])
params = tuple(fnann.Dense(np.full((m, n), 0.5, np.float32), np.zeros(m, np.float32))
               for n, m in [(8, 32), (32, 8)])
while True:
    cmd, *arg = sys.stdin.readline().split() or ["exit"]
    if cmd == "exit":
        break
    if cmd == "reap":
        os.waitpid(int(arg[0]), 0)
        print("reaped", flush=True)
        continue
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        continue
    if cmd == "hang":  # a live writer, stopped in the middle of its write
        def hang(f, **arrays):
            f.write(b"PK\x03\x04 half a zip")
            f.flush()
            print("hanging", flush=True)
            time.sleep(60)
            os._exit(0)
        np.savez = hang
    k, helper = 0, os.getppid()
    while os.getppid() == helper:  # "loop": save as fast as possible until killed (or orphaned)
        k += 1
        fnann.save(sys.argv[1], net, params, epoch=k)
    os._exit(0)
"""


def temporaries(folder):
    return sorted(p for p in os.listdir(folder) if p.endswith(".tmp"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="kill -9 and fork are POSIX")
def test_kill_9_mid_save_never_corrupts_and_the_next_save_cleans_up(tmp_path):
    target = tmp_path / "c.npz"
    helper = subprocess.Popen([sys.executable, "-c", FORK_WRITERS, str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # starts while this process works on
    net = fnann.MLP([8, 32, 8])
    params = tuple(fnann.Dense(np.ones((m, n), np.float32), np.zeros(m, np.float32)) for n, m in [(8, 32), (32, 8)])
    fnann.save(target, net, params, epoch=0)

    def ask(line):
        helper.stdin.write(line + "\n")
        helper.stdin.flush()
        return helper.stdout.readline().strip()

    writers = []

    def kill(pid):
        os.kill(pid, signal.SIGKILL)
        assert ask(f"reap {pid}") == "reaped"
        writers.remove(pid)

    try:
        rng = random.Random(0)
        for _ in range(4):  # trials: kill -9 at a random moment of a tight save loop
            pid = int(ask("loop"))
            writers.append(pid)
            time.sleep(rng.uniform(0.005, 0.05))
            kill(pid)
            assert fnann.load(target, net=net).epoch >= 0  # the old file or a new one, never corrupt
        first = ask("hang")
        second = helper.stdout.readline().strip()
        hanging = int(first if first.isdigit() else second)
        writers.append(hanging)
        live = [t for t in temporaries(tmp_path) if f".{hanging}." in t]
        assert len(live) == 1
        fnann.save(tmp_path / "other.npz", net, params)  # removes the dead writers' temporaries only
        assert temporaries(tmp_path) == live
        kill(hanging)  # a last trial: killed in the middle of its write
        assert atomic.stale_temporaries(tmp_path) == [str(tmp_path / live[0])]
        fnann.save(tmp_path / "other.npz", net, params)
        assert sorted(os.listdir(tmp_path)) == ["c.npz", "other.npz"]
        assert fnann.load(target, net=net).epoch >= 0
    finally:
        for pid in writers:
            os.kill(pid, signal.SIGKILL)
        helper.kill()
        helper.wait()
