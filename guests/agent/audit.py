# SPDX-License-Identifier: GPL-2.0
"""Audit over NETLINK_AUDIT: raw socket + struct, no libraries; a reader thread keeps the records."""

import os
import time

from .protocol import DIAG, MIB, OpFailed

NETLINK_AUDIT = 9
AF_NETLINK = 16
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
AUDIT_GET, AUDIT_SET, AUDIT_USER = 1000, 1001, 1005
AUDIT_STATUS_ENABLED, AUDIT_STATUS_FAILURE, AUDIT_STATUS_PID = 0x1, 0x2, 0x4
AUDIT_STATUS_RATE_LIMIT, AUDIT_STATUS_BACKLOG_LIMIT, AUDIT_STATUS_BACKLOG_WAIT_TIME = 0x8, 0x10, 0x20
AUDIT_REPLACE = 1329  # the kernel probing the daemon (payload: binary pid), not a record
AUDIT_NLGRP_READLOG = 1
NOT_RECORDS = (NLMSG_ERROR, NLMSG_NOOP, NLMSG_DONE, AUDIT_REPLACE)
STATUS_FIELDS = (
    "mask enabled failure pid rate_limit backlog_limit lost backlog feature_bitmap backlog_wait_time "
    "backlog_wait_time_actual"
).split()
MAX_RECORDS = 200_000

TYPE_CHECKING = False
if TYPE_CHECKING:  # imported where used, after the hello (start-up does not pay for messages.py)
    from .messages import AuditOpenReply, AuditReadReply, AuditStatus


class Audit:
    def __init__(self) -> None:
        import socket
        import struct
        import threading

        self.socket_mod, self.struct, self.threading = socket, struct, threading
        self.ctl = None
        self.rec = None
        self.mode: str | None = None
        self.seq = 0
        self.lock = threading.Lock()
        self.records: list[tuple[int, int, str]] = []
        self.next_seq = 0  # sequence number of the next record received
        self.overruns = 0
        self.thread = None
        self.wake_r = self.wake_w = -1
        self.stopping = False

    # -- netlink plumbing -------------------------------------------------------------------------------------------
    def _socket(self, groups: int = 0):
        s = self.socket_mod.socket(AF_NETLINK, self.socket_mod.SOCK_RAW, NETLINK_AUDIT)
        s.bind((0, groups))
        return s

    def _msg(self, mtype: int, flags: int, payload: bytes) -> tuple[int, bytes]:
        self.seq += 1
        hdr = self.struct.pack("=IHHII", 16 + len(payload), mtype, flags, self.seq, 0)
        return self.seq, hdr + payload

    def _split(self, data: bytes):
        """Yield (type, seq, payload) per netlink message.

        Quirk (kernel/audit.c, audit_log_end): a record unicast to the audit daemon has nlmsg_len = payload
        length, not header + payload; multicast copies get the usual length (kauditd_send_multicast_skb).
        kauditd sends one record per datagram, so a record's payload is the rest of the datagram, clipped.
        """
        off = 0
        while off + 16 <= len(data):
            length, mtype, flags, seq, pid = self.struct.unpack_from("=IHHII", data, off)
            if mtype >= 1100:  # an audit record, not a control reply (AUDIT_GET etc. are 1000-1099)
                yield mtype, seq, data[off + 16 : min(len(data), off + 16 + length)]
                return
            if length < 16 or off + length > len(data):
                break
            yield mtype, seq, data[off + 16 : off + length]
            off += (length + 3) & ~3

    def _ctl(self):
        if self.ctl is None:
            self.ctl = self._socket()
            self.ctl.settimeout(3)
        return self.ctl

    def _request(self, sock, mtype: int, payload: bytes, want_type: int | None = None) -> bytes | None:
        """Send a request; wait for its ack (want_type None) or its reply of type want_type. Raises OSError."""
        flags = NLM_F_REQUEST | (NLM_F_ACK if want_type is None else 0)
        seq, msg = self._msg(mtype, flags, payload)
        sock.sendto(msg, (0, 0))
        deadline = time.monotonic() + 3
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise OSError(110, f"no reply from the kernel to audit message type {mtype}") from None
            for rtype, rseq, body in self._split(data):
                if rtype == NLMSG_ERROR and rseq == seq:
                    err = -self.struct.unpack_from("=i", body)[0]
                    if err:
                        raise OSError(err, f"audit message type {mtype}: {os.strerror(err)}")
                    if want_type is None:
                        return None
                elif want_type is not None and rtype == want_type and rseq == seq:
                    return body
                elif sock is self.rec and rtype not in NOT_RECORDS:
                    self._store(rtype, body)

    def status(self) -> "AuditStatus":
        """AUDIT_GET: the fields this kernel's struct audit_status has (the others None)."""
        from .messages import AuditStatus

        body = self._request(self._ctl(), AUDIT_GET, b"", want_type=AUDIT_GET) or b""
        n = min(len(body) // 4, len(STATUS_FIELDS))
        values = self.struct.unpack_from(f"={n}I", body)
        st = dict(zip(STATUS_FIELDS[:n], values, strict=True))
        if "feature_bitmap" in st:
            st["version"] = st["feature_bitmap"]
        return AuditStatus(**st)

    def set(self, sock=None, **fields: int) -> None:
        masks = {
            "enabled": AUDIT_STATUS_ENABLED,
            "failure": AUDIT_STATUS_FAILURE,
            "pid": AUDIT_STATUS_PID,
            "rate_limit": AUDIT_STATUS_RATE_LIMIT,
            "backlog_limit": AUDIT_STATUS_BACKLOG_LIMIT,
            "backlog_wait_time": AUDIT_STATUS_BACKLOG_WAIT_TIME,
        }
        values = dict.fromkeys(STATUS_FIELDS, 0)
        for name, value in fields.items():
            values["mask"] |= masks[name]
            values[name] = value & 0xFFFFFFFF
        payload = self.struct.pack(f"={len(STATUS_FIELDS)}I", *(values[f] for f in STATUS_FIELDS))
        self._request(sock or self._ctl(), AUDIT_SET, payload)

    def user_message(self, mtype: int, text: str) -> None:
        self._request(self._ctl(), mtype, text.encode() + b"\0")

    # -- the reader -------------------------------------------------------------------------------------------------
    def _store(self, mtype: int, body: bytes) -> None:
        text = body.rstrip(b"\0").decode("utf-8", "backslashreplace")
        with self.lock:
            self.records.append((self.next_seq, mtype, text))
            self.next_seq += 1
            if len(self.records) > MAX_RECORDS:
                del self.records[: len(self.records) - MAX_RECORDS]

    def _reader(self) -> None:
        import select

        sock = self.rec
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        sock.setblocking(False)
        while not self.stopping:
            for fd, _ in poller.poll():
                if fd == self.wake_r:
                    return
            while True:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno == 105:  # ENOBUFS: the socket overflowed and the kernel dropped records
                        self.overruns += 1
                        continue
                    DIAG.log(f"audit reader stopped: {e}")
                    return
                for mtype, _, body in self._split(data):
                    if mtype not in NOT_RECORDS:
                        self._store(mtype, body)

    def open(self, enable: bool, backlog_limit: int | None, mode: str) -> "AuditOpenReply":
        from .messages import AuditOpenReply

        me = os.getpid()
        if self.mode is not None:
            if self.mode != mode:
                raise OpFailed(f"audit is already open in {self.mode} mode; audit_close first")
            self._configure(enable, backlog_limit)
            return AuditOpenReply(id=None, ok=True, already_open=True, mode=mode, mark=self.next_seq,
                                  status=self.status())
        st = self.status()
        if mode == "daemon" and st.pid and st.pid != me and os.path.exists(f"/proc/{st.pid}"):
            raise OpFailed(_auditd_busy(st.pid), auditd_pid=st.pid)
        rec = self._socket(AUDIT_NLGRP_READLOG if mode == "multicast" else 0)
        for opt in (33, 8):  # SO_RCVBUFFORCE (root), then SO_RCVBUF
            try:
                rec.setsockopt(self.socket_mod.SOL_SOCKET, opt, 8 * MIB)
                break
            except OSError:
                continue
        self.rec = rec
        if mode == "daemon":
            try:
                self.set(sock=rec, pid=me)
            except OSError as e:
                self.rec = None
                rec.close()
                if e.errno == 17:  # EEXIST
                    pid = self.status().pid or 0
                    raise OpFailed(_auditd_busy(pid), errno=17, auditd_pid=pid) from None
                raise
        self.mode = mode
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe()
        self.thread = self.threading.Thread(target=self._reader, name="audit-reader", daemon=True)
        self.thread.start()
        try:
            self._configure(enable, backlog_limit)
        except OSError:
            self.close()
            raise
        DIAG.log(f"audit open ({mode}), pid {me}")
        return AuditOpenReply(id=None, ok=True, mode=mode, mark=self.next_seq, status=self.status())

    def _configure(self, enable: bool, backlog_limit: int | None) -> None:
        if enable:
            self.set(enabled=1)
        if backlog_limit is not None:
            self.set(backlog_limit=backlog_limit)

    def close(self) -> tuple[bool, str | None]:
        """Stop reading (and unregister as the audit daemon): whether it was open, and why unregistering failed."""
        if self.mode is None:
            return False, None
        unregister_error = None
        if self.mode == "daemon":
            try:
                self.set(pid=0)
            except OSError as e:
                unregister_error = str(e)
        time.sleep(0.02)  # let the reader drain what was already queued to us
        self.stopping = True
        os.write(self.wake_w, b"x")
        self.thread.join(2)
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)
        self.wake_r = self.wake_w = -1
        self.rec.close()
        self.rec = None
        self.mode = None
        with self.lock:
            self.records.clear()  # marks stay monotonic: a later read from an old mark reports dropped_before
        DIAG.log("audit closed" + (f" (unregister failed: {unregister_error})" if unregister_error else ""))
        return True, unregister_error or None

    def read(self, since: int, wait: float, types: list[int] | None) -> "AuditReadReply":
        from .messages import AuditReadReply

        if self.mode is None:
            raise OpFailed("audit is not open (send audit_open first)")
        if wait > 0:
            time.sleep(wait)
        with self.lock:
            first = self.records[0][0] if self.records else self.next_seq
            start = max(0, since - first)
            chosen = self.records[start:]
            end = self.next_seq
        recs = [{"seq": s, "type": t, "text": x} for s, t, x in chosen if types is None or t in types]
        return AuditReadReply(id=None, ok=True, records=recs, mark=end, status=self.status(), overruns=self.overruns,
                              dropped_before=first if since < first else None)


def _auditd_busy(pid: int) -> str:
    return (
        f"auditd pid {pid} is the audit daemon; stop it (systemctl stop auditd / kill {pid}) — "
        "only one reader can be the audit daemon"
    )
