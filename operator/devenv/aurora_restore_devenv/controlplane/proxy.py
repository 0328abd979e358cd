"""A TCP proxy in front of the apiserver that can drop every connection on demand: network faults for tests.

``ConnectionCutter`` forwards bytes and nothing else: TLS runs end to end between the client and kube-apiserver,
whose serving certificate names 127.0.0.1, so a kubeconfig pointed at ``https://127.0.0.1:<proxy port>`` still
verifies the server and still authenticates with its client certificate or token. ``cut_all()`` resets every open
connection in both directions at once, which is what a network blip or a load balancer dropping idle watches
does to a client; new connections are accepted as before. When the upstream is down (an apiserver restart), each
new connection is accepted and then reset, as a load balancer with no healthy backend does, and clients retry.

    with ConnectionCutter("127.0.0.1", plane.secure_port) as cutter:
        kubeconfig = cutter.write_kubeconfig(plane.kubeconfig_path, workdir / "proxied.kubeconfig")
        ...                   # run the operator with that kubeconfig
        cutter.cut_all()      # every watch and pooled connection breaks now

One thread accepts; each connection has two threads, one per direction, with blocking sockets, so a client that
stops reading stalls only its own connection.
"""

from __future__ import annotations

import socket
import struct
import threading
import urllib.parse
from pathlib import Path

import yaml

LISTEN_HOST = "127.0.0.1"
CONNECT_TIMEOUT_SECONDS = 5.0
ACCEPT_POLL_SECONDS = 0.2
CUT_WAIT_SECONDS = 2.0
BUFFER_SIZE = 65536
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


class _Link:
    """One proxied connection: the client's socket, the upstream socket, and the two threads pumping bytes."""

    def __init__(self, cutter: ConnectionCutter, downstream: socket.socket, upstream: socket.socket) -> None:
        self.cutter = cutter
        self.downstream = downstream
        self.upstream = upstream
        self.lock = threading.Lock()
        self.cut = False  # closing abortively (RST); the pumps must not send FIN on their way out
        self.open_pumps = 2
        self.closed = threading.Event()

    def start(self) -> None:
        for source, target in ((self.downstream, self.upstream), (self.upstream, self.downstream)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True, name="connection-cutter").start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(BUFFER_SIZE)
                if not data:
                    break
                target.sendall(data)
        except OSError:  # reset, or shut down by abort(): take the whole connection down
            self.abort()
        else:  # an orderly end of this direction: pass the FIN on and let the other direction finish
            with self.lock:
                if not self.cut:
                    try:
                        target.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        finally:
            self._pump_done()

    def abort(self) -> bool:
        """Reset both sockets; True if this call did it (False: already cut). The pumps close the sockets."""
        with self.lock:
            if self.cut:
                return False
            self.cut = True
        for sock in (self.downstream, self.upstream):
            try:
                # Linger 0: close() sends RST instead of FIN. SHUT_RD wakes a pump blocked in recv() at once.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        return True

    def wait_closed(self, timeout: float) -> bool:
        """Wait for the pumps to close both sockets after abort().

        A pump blocked in sendall() to a peer that has stopped reading only wakes up on SHUT_WR, so after half the
        timeout both sockets are shut down in full (a FIN goes out just before the RST).
        """
        if self.closed.wait(timeout / 2):
            return True
        for sock in (self.downstream, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return self.closed.wait(timeout / 2)

    def _pump_done(self) -> None:
        with self.lock:
            self.open_pumps -= 1
            last = self.open_pumps == 0
        if last:  # only now: closing a socket another thread still blocks on would not wake that thread
            self.downstream.close()
            self.upstream.close()
            self.cutter._forget(self)
            self.closed.set()


class ConnectionCutter:
    """A threaded TCP proxy on 127.0.0.1 (a free port) to ``target_host:target_port``; see the module docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = LISTEN_HOST
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self.accepted = 0  # connections accepted since start(), for tests that want to see reconnects

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the connection cutter has not been started")
        return self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        """The proxy as an https URL (TLS passes through to the apiserver)."""
        return f"https://{self.host}:{self.port}"

    def __enter__(self) -> ConnectionCutter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> ConnectionCutter:
        if self._listener is not None:
            raise RuntimeError("the connection cutter is already running")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(128)
        listener.settimeout(ACCEPT_POLL_SECONDS)  # so the accept loop sees stop() without platform tricks
        self._listener = listener
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True, name="connection-cutter-accept")
        self._accept_thread.start()
        return self

    def write_kubeconfig(self, source: Path, out: Path) -> Path:
        """Copy the kubeconfig ``source`` to ``out`` with each cluster that points at the target going through here.

        Credentials and the CA stay as they are (the file keeps mode 0600). Raises ValueError when no cluster's
        server is the target, rather than writing a kubeconfig that silently bypasses the proxy.
        """
        kubeconfig = yaml.safe_load(Path(source).read_text())
        rewritten = 0
        for entry in kubeconfig.get("clusters") or []:
            cluster = entry.get("cluster") or {}
            server = urllib.parse.urlsplit(cluster.get("server", ""))
            if server.port == self.target_port and self._is_target_host(server.hostname or ""):
                cluster["server"] = urllib.parse.urlunsplit(server._replace(netloc=f"{self.host}:{self.port}"))
                rewritten += 1
        if not rewritten:
            raise ValueError(f"no cluster in {source} has its server at {self.target_host}:{self.target_port}")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.touch(mode=0o600)
        out.chmod(0o600)
        out.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
        return out

    def cut_all(self) -> int:
        """Reset every open connection in both directions now; return how many. New connections still work.

        Returns once the cut connections are closed (at most a few seconds, for a peer that had stopped reading).
        """
        with self._lock:
            links = list(self._links)
        cut = [link for link in links if link.abort()]
        for link in cut:
            link.wait_closed(CUT_WAIT_SECONDS)
        return len(cut)

    def connections(self) -> int:
        """Connections open through the proxy right now (each is one client connection and one upstream)."""
        with self._lock:
            return sum(1 for link in self._links if not link.cut)

    def stop(self) -> None:
        """Stop accepting, reset every open connection and wait for the threads; safe to call twice."""
        if self._listener is None:
            return
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join()
        self._listener.close()
        self._listener = None
        self.cut_all()

    def _is_target_host(self, hostname: str) -> bool:
        if hostname == self.target_host:
            return True
        return hostname in LOOPBACK_NAMES and self.target_host in LOOPBACK_NAMES

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            downstream.settimeout(None)
            self.accepted += 1
            threading.Thread(target=self._connect, args=(downstream,), daemon=True, name="connection-cutter").start()

    def _connect(self, downstream: socket.socket) -> None:
        try:
            upstream = socket.create_connection((self.target_host, self.target_port), timeout=CONNECT_TIMEOUT_SECONDS)
        except OSError:  # the upstream is down: reset the client, which retries (as through a load balancer)
            _reset(downstream)
            return
        upstream.settimeout(None)
        for sock in (downstream, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(self, downstream, upstream)
        with self._lock:
            if self._stopping.is_set():
                _reset(downstream)
                _reset(upstream)
                return
            self._links.add(link)
        link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
