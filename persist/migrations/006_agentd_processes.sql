-- 006_agentd_processes.sql: the agentd processes that use this database, so that a starting process
-- can tell which claimants of active runs are dead.
--
-- A run is claimed by the process that runs it (runs.claimed_by = its boot id) under a lease that the
-- process renews every lease/3. Before this table, a process killed with SIGKILL left its runs
-- `pending` / `running` and their threads `busy` until the lease expired (30 s by default), and the
-- next process on the same database admitted new runs on those threads meanwhile. Each process now
-- records its host name, pid and the pid's start time (clock ticks since the host booted, from
-- /proc/<pid>/stat, which tells a reused pid apart), and the scope in which that pid means something:
-- the kernel's boot id and the pid namespace. A process starting in the same scope on the same host
-- settles at once, before it takes work, the runs of a process whose pid no longer runs that program
-- instance. Processes elsewhere (another host, container or boot) cannot be checked that way: their
-- runs end when their lease expires, and until then admission honours them (409 on their threads).

CREATE TABLE agentd_processes (
    boot_id      text        PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL CHECK (pid > 0),
    pid_start    bigint      NOT NULL CHECK (pid_start >= 0),
    pid_scope    text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agentd_processes_host_idx ON agentd_processes (host, pid_scope);
COMMENT ON TABLE agentd_processes IS
    'agentd processes using this database (one row per process lifetime, boot_id = runs.claimed_by). Deleted when a starting process on the same host finds the pid gone and settles its runs, or by the lease sweep ten leases after the last heartbeat once it claims no active run.';
COMMENT ON COLUMN agentd_processes.pid_start IS
    'Start time of the pid in clock ticks after the host booted (/proc/<pid>/stat field 22): a pid reused by another program has another one.';
COMMENT ON COLUMN agentd_processes.pid_scope IS
    'Where pid and pid_start identify a process: "<kernel boot id> <pid namespace>" ('''' when unknown: never checked).';
COMMENT ON COLUMN agentd_processes.heartbeat_at IS 'Renewed with the run leases (every runs.lease_ms / 3).';

