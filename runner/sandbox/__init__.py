"""The trust boundary: the solver's code runs in a sandboxed process, the grader talks to it.

    failures   the verdict exceptions (one class per verdict)
    wire       the message format: JSON + raw tensor bytes, never pickle
    child      the sandboxed process itself (`python -m runner.sandbox.child`)
    backends   how it is started: bubblewrap (`local`); container holds `docker`
    zygote     a process with the frameworks imported, forked into each local sandbox
    reaper     the docker backend's containers end with the grader that started them
    client     the trusted side's pipe to it, every read and write under a deadline
    pool       started processes kept ready for the next submission
    proxies    what tests hold: the solver's module and objects
    inprocess  the UNSAFE in-process stand-in, for one's own code

Keep this package light: the sandboxed process imports it.
"""
