from __future__ import annotations

from diagnosis_support import apply
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.finding import Confidence
from infraveil.core.diagnosis.rules.not_executable import rule


def test_permission_denied_names_the_file_and_chmod() -> None:
    f = apply(rule, "/bin/sh: 1: ./run.sh: Permission denied", exit_code=126)
    assert f is not None and f.category is Category.NOT_EXECUTABLE
    assert "./run.sh" in f.summary and "chmod +x ./run.sh" in f.fix


def test_a_carriage_return_in_the_shebang_is_called_out() -> None:
    line = "bash: ./run.sh: /bin/bash^M: bad interpreter: No such file or directory"
    f = apply(rule, line, exit_code=126)
    assert f is not None and "Windows line endings" in f.summary and "sed -i" in f.fix


def test_a_missing_interpreter_is_named() -> None:
    line = "bash: ./tool: /usr/bin/python9: bad interpreter: No such file or directory"
    f = apply(rule, line, exit_code=126)
    assert f is not None and "/usr/bin/python9" in f.summary


def test_the_agents_exec_failure_and_a_bare_126() -> None:
    spawned = apply(rule, spawn_error="permission denied executing /srv/app", command=("/srv/app",))
    assert spawned is not None and "/srv/app" in spawned.summary
    bare = apply(rule, "", exit_code=126)
    assert bare is not None and bare.confidence is Confidence.LOW


def test_permission_denied_on_a_data_file_is_not_this() -> None:
    log = "PermissionError: [Errno 13] Permission denied: '/var/lib/app/db.sqlite'"
    assert apply(rule, log, exit_code=1) is None


def test_runcs_no_such_file_for_a_file_it_found_is_a_missing_interpreter_or_loader() -> None:
    # runc found the entrypoint, but execve failed: its #! interpreter or ELF loader is missing
    line = 'container_linux.go:349: starting container process caused "exec user process caused: no such file or directory"'  # noqa: E501
    f = apply(rule, line, exit_code=1)
    assert f is not None and f.category is Category.NOT_EXECUTABLE
    assert "dynamic loader" in f.summary and "dos2unix" in f.fix and "CGO_ENABLED=0" in f.fix
    assert "ENTRYPOINT" in f.fix  # the file's name is not in the line: a placeholder


def test_runcs_permission_denied_for_the_entrypoint() -> None:
    f = apply(rule, 'standard_init_linux.go:211: exec user process caused "permission denied"')
    assert f is not None and "permission denied" in f.summary and "chmod +x" in f.fix


def test_a_shells_permission_denied_with_a_persons_words_after_it() -> None:
    # pasted in an issue with the reporter's words run on after the shell's
    line = "sh: 1: /docker-entrypoint.d/10-setup.sh: Permission denied when the pod starts"
    f = apply(rule, line, exit_code=126)
    assert f is not None and f.category is Category.NOT_EXECUTABLE
    assert "/docker-entrypoint.d/10-setup.sh" in f.summary


def test_a_program_denied_a_file_with_words_after_is_not_this() -> None:
    # not a shell: a program that could not open a file it reads
    line = "open: /var/lib/app/state.db: Permission denied (os error 13)"
    assert apply(rule, line, exit_code=1) is None
