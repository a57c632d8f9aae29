"""A real single-node Slurm (Debian's slurm-wlm 22.05) with accounting, for the cluster tests.

Shaped like CSC Puhti where it matters to the workflow: partitions ``small`` (default),
``large``, ``longrun``, ``hugemem`` and ``test`` with Puhti's time limits; a count GRES ``nvme``
(GB) on the node; a TaskProlog that exports ``LOCAL_SCRATCH`` only for jobs that asked for
``--gres=nvme:<GB>`` (as Puhti does) and an Epilog that removes it; accounting through
``slurmdbd`` on a private MariaDB, so ``sacct``, account validation and the executor plugin's
default status path behave as on CSC (without accounting ``sacct`` fails and the plugin waits
forever). The node claims a Puhti M node's size (``SlurmdParameters=config_overrides``); nothing
enforces it, the jobs here are tiny.

Everything lives in one temporary folder and every daemon runs on 127.0.0.1 with free ports,
started here and stopped here. One shared path is unavoidable: the executor plugin's job step
drops every ``SLURM_*`` variable, so the ``srun`` inside a job only finds its configuration at
``/etc/slurm/slurm.conf``. It is written only when absent (or left over by an earlier run of this
harness) and removed afterwards; a configuration someone else wrote is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by eolab tests/slurm_harness.py"
DEBIAN_PACKAGES = ("slurm-wlm", "munge", "slurmdbd", "mariadb-server")
NEEDED_BINARIES = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "sacctmgr")
ACCOUNT = "project_2001234"
CLUSTER = "eolabtest"
# Puhti's CPU partitions (time limits from docs.csc.fi); all on the one node here.
PARTITIONS = {
    "small": "3-00:00:00",
    "large": "3-00:00:00",
    "longrun": "14-00:00:00",
    "hugemem": "3-00:00:00",
    "test": "00:15:00",
}
NODE = {"cpus": 40, "memory_mb": 382_000, "nvme_gb": 3600}


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be run here (not root, no packages, someone else's slurm.conf): tests skip
    with this message. A Slurm that is installed but does not start is an error, not a skip."""


def ensure_packages() -> None:
    """Install the Debian packages where missing (root + apt-get only), else explain."""
    if all(shutil.which(b) or Path("/usr/sbin", b).exists() for b in NEEDED_BINARIES):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SlurmUnavailable(
            f"needs Debian packages {' '.join(DEBIAN_PACKAGES)} and root to install them"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout: float, logs: list[Path] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in logs if p.exists())
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s\n{tails}")


@dataclass
class SlurmCluster:
    """Start with :meth:`start` (or ``with``), stop with :meth:`stop`."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="eolab-slurm-")))
    host: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    wrote_system_conf: bool = False
    munged_pid: int | None = None

    # -- paths -------------------------------------------------------------------------------
    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def nvme_root(self) -> Path:
        """Where the TaskProlog makes each NVMe job's ``$LOCAL_SCRATCH`` (as /run/nvme on Puhti)."""
        return self.root / "nvme"

    @property
    def prolog_log(self) -> Path:
        """One line per task start: job id, step id, LOCAL_SCRATCH (empty when none)."""
        return self.root / "taskprolog.log"

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, SLURM_CONF=str(self.conf))

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        try:
            ensure_packages()
            self._write_config()
            self._claim_system_conf()
            self._start_munge()
            self._start_mariadb()
            self._start_slurmdbd()
            self._add_associations()
            self._start_slurm()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Cancel leftover jobs, stop what was started here (newest first), clean up."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "-u", "root"], env=self.env, capture_output=True)
        for name in reversed(list(self.procs)):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.munged_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.munged_pid, signal.SIGTERM)
            self.munged_pid = None
        if self.wrote_system_conf and SYSTEM_CONF.exists():
            if SYSTEM_CONF.read_text().startswith(MARKER):
                SYSTEM_CONF.unlink()
            self.wrote_system_conf = False
        if not os.environ.get("EOLAB_KEEP_SLURM"):
            shutil.rmtree(self.root, ignore_errors=True)

    # -- commands ----------------------------------------------------------------------------
    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> str:
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def job(self, job_id: str | int) -> dict[str, str]:
        """``scontrol show job`` as a dict (finished jobs stay visible for MinJobAge)."""
        out = self.run("scontrol", "show", "job", "-o", str(job_id))
        return _parse_scontrol(out)

    def jobs(self) -> list[dict[str, str]]:
        out = self.run("scontrol", "show", "job", "-o", check=False)
        return [_parse_scontrol(line) for line in out.splitlines() if line.startswith("JobId=")]

    def prolog_records(self) -> list[dict[str, str]]:
        if not self.prolog_log.exists():
            return []
        keys = ("job", "step", "local_scratch")
        return [dict(zip(keys, line.split("\t"), strict=True))
                for line in self.prolog_log.read_text().splitlines()]  # fmt: skip

    # -- set-up steps ------------------------------------------------------------------------
    def _write_config(self) -> None:
        etc = self.root / "etc"
        for d in ("etc", "state", "spool", "log", "run", "nvme", "db", "dbrun"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.ports = {k: free_port() for k in ("ctld", "slurmd", "dbd", "mysql")}
        task_prolog = etc / "task_prolog.sh"
        # scontrol with an explicit configuration: the job step's environment has no SLURM_CONF.
        task_prolog.write_text(f"""#!/bin/sh
# As on CSC Puhti: LOCAL_SCRATCH exists only for jobs that requested --gres=nvme:<GB>.
dir=""
if SLURM_CONF={self.conf} scontrol show job -o "$SLURM_JOB_ID" | grep -q 'gres[/:]nvme'; then
    dir={self.nvme_root}/job_$SLURM_JOB_ID/data
    mkdir -p "$dir"
    echo "export LOCAL_SCRATCH=$dir"
fi
printf '%s\\t%s\\t%s\\n' "$SLURM_JOB_ID" "$SLURM_STEP_ID" "$dir" >> {self.prolog_log}
""")
        epilog = etc / "epilog.sh"
        epilog.write_text(f"#!/bin/sh\nrm -rf {self.nvme_root}/job_$SLURM_JOB_ID\n")
        for script in (task_prolog, epilog):
            script.chmod(0o755)
        partitions = "\n".join(
            f"PartitionName={name} Nodes={self.host} MaxTime={limit} State=UP"
            + (" Default=YES" if name == "small" else "")
            for name, limit in PARTITIONS.items()
        )
        r = self.root
        self.conf.write_text(f"""{MARKER}
ClusterName={CLUSTER}
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={self.ports["ctld"]}
SlurmdPort={self.ports["slurmd"]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=600
KillWait=5
GresTypes=nvme
TaskProlog={task_prolog}
Epilog={epilog}
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports["dbd"]}
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/nvme
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={NODE["cpus"]} RealMemory={NODE["memory_mb"]} \
Gres=nvme:{NODE["nvme_gb"]} State=UNKNOWN
{partitions}
""")
        (etc / "gres.conf").write_text(f"NodeName={self.host} Name=nvme Count={NODE['nvme_gb']}\n")
        self.db_password = os.urandom(8).hex()
        dbd = etc / "slurmdbd.conf"
        dbd.write_text(f"""AuthType=auth/munge
DbdHost={self.host}
DbdAddr=127.0.0.1
DbdPort={self.ports["dbd"]}
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports["mysql"]}
StorageUser=slurm
StoragePass={self.db_password}
StorageLoc=slurm_acct_db
LogFile={r}/log/slurmdbd.log
PidFile={r}/run/slurmdbd.pid
""")
        dbd.chmod(0o600)

    def _claim_system_conf(self) -> None:
        if SYSTEM_CONF.exists():
            text = SYSTEM_CONF.read_text()
            if not text.startswith(MARKER):
                raise SlurmUnavailable(f"{SYSTEM_CONF} exists and was not written by this harness")
            pid = _pid_in_marker(text)
            if pid and _alive(pid):
                raise SlurmUnavailable(f"another test Slurm (pid {pid}) is running")
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.write_text(
            self.conf.read_text().replace(MARKER, f"{MARKER} pid={os.getpid()}", 1)
        )
        self.wrote_system_conf = True

    def _start_munge(self) -> None:
        if _munge_works():
            return  # a running munged (with the system key) serves us as is
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        pidfile = Path("/run/munge/munged.pid")  # munged's default; the munge user can write it
        subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True,
                       capture_output=True)  # fmt: skip
        _wait("munged", _munge_works, 10)
        self.munged_pid = int(pidfile.read_text().strip()) if pidfile.exists() else None

    def _start_mariadb(self) -> None:
        data, sock = self.root / "db", self.root / "dbrun" / "mysqld.sock"
        log = self.root / "log" / "mariadb.log"
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
             "--auth-root-authentication-method=socket", "--skip-test-db"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.procs["mariadbd"] = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}",
             f"--port={self.ports['mysql']}", "--bind-address=127.0.0.1", "--user=root",
             f"--pid-file={self.root}/run/mariadbd.pid", f"--log-error={log}",
             "--innodb-buffer-pool-size=64M", "--skip-log-bin"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        ping = ["mariadb-admin", f"--socket={sock}", "-u", "root", "ping"]
        _wait("mariadbd", lambda: subprocess.run(ping, capture_output=True).returncode == 0, 60,
              [log])  # fmt: skip
        sql = (
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )
        subprocess.run(["mariadb", f"--socket={sock}", "-u", "root", "-e", sql],
                       check=True, capture_output=True)  # fmt: skip

    def _start_slurmdbd(self) -> None:
        self.procs["slurmdbd"] = self._daemon("slurmdbd", "-D")
        _wait("slurmdbd", lambda: _ok(self.env, ["sacctmgr", "-n", "list", "cluster"]), 90,
              [self.root / "log" / "slurmdbd.log"])  # fmt: skip

    def _add_associations(self) -> None:
        self.run("sacctmgr", "-i", "add", "cluster", CLUSTER)
        self.run("sacctmgr", "-i", "add", "account", ACCOUNT, f"Cluster={CLUSTER}",
                 "Description=eolab test project", "Organization=eolab")  # fmt: skip
        self.run("sacctmgr", "-i", "add", "user", "root", f"Account={ACCOUNT}",
                 f"Cluster={CLUSTER}")  # fmt: skip

    def _start_slurm(self) -> None:
        logs = [self.root / "log" / n for n in ("slurmctld.log", "slurmd.log")]
        self.procs["slurmctld"] = self._daemon("slurmctld", "-D", "-i")
        # slurmd registers once at start: the controller must answer first.
        _wait("slurmctld", lambda: "UP" in self.run("scontrol", "ping", check=False, timeout=10),
              30, logs)  # fmt: skip
        self.procs["slurmd"] = self._daemon("slurmd", "-D")
        _wait("node idle", self._node_idle, 60, logs)

    def _node_idle(self) -> bool:
        # One line per partition the node is in.
        states = self.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10).split()
        return bool(states) and set(states) == {"idle"}

    def _daemon(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.root / "log" / f"{name}.stderr", "w")  # noqa: SIM115
        return subprocess.Popen([f"/usr/sbin/{name}", *args], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip


def _parse_scontrol(line: str) -> dict[str, str]:
    """``Key=Value Key=Value …`` (one job per line, ``-o``) into a dict; values have no spaces
    except in a few fields this harness does not read."""
    out = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if sep:
            out[key] = value
    return out


def _munge_works() -> bool:
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=5)
        if cred.returncode != 0:
            return False
        return subprocess.run(["unmunge"], input=cred.stdout, capture_output=True,
                              timeout=5).returncode == 0  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False


def _ok(env: dict[str, str], cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, env=env, capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _pid_in_marker(text: str) -> int | None:
    first = text.splitlines()[0]
    _, _, pid = first.partition("pid=")
    return int(pid) if pid.strip().isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
