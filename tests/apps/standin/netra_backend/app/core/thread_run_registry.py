# SPDX-License-Identifier: GPL-2.0
"""The process-global run -> thread map of the reference (ThreadRunRegistry), plus the
run -> user map the ground-truth log uses to name the owner of a leaked frame."""
import os

_run_thread = {}
_run_user = {}
_thread_user = {}


def new_run_id(thread_id):
    # "run_<thread>_<hex>" lets _resolve_thread_id_from_run_id parse the thread back out.
    return "run_%s_%s" % (thread_id, os.urandom(4).hex())


def register_thread(thread_id, user_id):
    _thread_user[thread_id] = user_id


def register(run_id, thread_id, user_id):
    _run_thread[run_id] = thread_id
    _run_user[run_id] = user_id


def thread_of(run_id):
    return _run_thread.get(run_id)


def user_of(run_id):
    return _run_user.get(run_id)


def user_of_thread(thread_id):
    return _thread_user.get(thread_id)
