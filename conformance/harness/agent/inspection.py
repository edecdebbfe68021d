"""What the kit cannot see from outside: a handler's request and files, and the processes and
sockets of the agent (Linux /proc; elsewhere the scans find nothing)."""

import os
import socket

from .protocol import jsonable


def type_name(obj):
    cls = type(obj)
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def describe_socket(sock):
    info = {"type": type_name(sock), "is_socket": isinstance(sock, socket.socket)}
    for key, call in (
        ("so_type", lambda: sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)),
        ("family", lambda: int(sock.family)),
        ("sockname", lambda: jsonable(sock.getsockname())),
        ("peername", lambda: jsonable(sock.getpeername())),
        ("fileno", lambda: sock.fileno()),
    ):
        try:
            info[key] = call()
        except Exception as exc:
            info[key + "_error"] = repr(exc)
    return info


def describe_request(request):
    """A handler's ``self.request``: a socket, or a (data, socket) sequence."""
    if isinstance(request, (tuple, list)):
        items = list(request)
        info = {"kind": "sequence", "type": type_name(request), "length": len(items)}
        info["is_tuple"] = isinstance(request, tuple)
        if len(items) == 2:
            data, sock = items
            info["data_type"] = type_name(data)
            if isinstance(data, (bytes, bytearray)):
                info["data"] = bytes(data).hex()
            info["socket"] = describe_socket(sock)
        return info
    info = describe_socket(request)
    info["kind"] = "socket"
    return info


def request_socket(request):
    """The socket of a (data, socket) request, else None."""
    if isinstance(request, (tuple, list)) and len(request) == 2:
        return request[1]
    return None


def stream_file_facts(handler, filenos=False):
    """A handler's rfile and wfile (type, closed) and its connection's timeout and
    TCP_NODELAY, as far as it has them; with ``filenos``, also what wfile.fileno() and the
    connection's fileno() return (or raise)."""
    facts = {}
    for name in ("rfile", "wfile"):
        stream = getattr(handler, name, None)
        if stream is not None:
            facts[name + "_type"] = type_name(stream)
            facts[name + "_closed"] = bool(getattr(stream, "closed", None))
    sock = handler.request
    if filenos:
        for key, owner in (("wfile_fileno", getattr(handler, "wfile", None)),
                           ("connection_fileno", sock)):
            try:
                facts[key] = owner.fileno()
            except Exception as exc:
                facts[key + "_error"] = repr(exc)
    # Duck-typed: a socket-like request that is not a socket.socket still has its facts.
    if not isinstance(sock, (tuple, list)) and hasattr(sock, "gettimeout"):
        try:
            facts["timeout"] = sock.gettimeout()
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                facts["nodelay"] = bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        except OSError as exc:
            facts["socket_error"] = repr(exc)
    return facts


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name: state, ppid, ..."""
    fd = os.open("/proc/%s/stat" % pid, os.O_RDONLY)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    # The command name, in parentheses, may itself hold spaces and parentheses.
    return data.rsplit(b")", 1)[1].decode("ascii").split()


def process_state(pid):
    """'running', 'zombie' or 'gone' for a process of this machine."""
    try:
        state = _stat_fields(pid)[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return "gone"
        return "running"
    return "zombie" if state in ("Z", "X") else "running"


def children_of(pid, zombies=False):
    """The children of ``pid`` that have not exited, or with ``zombies`` those that have
    exited and were not reaped."""
    running, exited = children_and_zombies(pid)
    return exited if zombies else running


def children_and_zombies(pid, also=()):
    """(children of ``pid`` that have not exited, those that have and were not reaped).

    Those its threads list in /proc/PID/task/TID/children (where /proc has no such list,
    every process is looked at), and of the pids ``also``, those that are its children:
    the kernel's lists may miss a child while others come and go, a pid asked about by
    name is checked all the same."""
    running = []
    exited = []
    candidates = _listed_children(pid)
    if candidates is None:
        try:
            candidates = [name for name in os.listdir("/proc") if name.isdigit()]
        except OSError:
            candidates = []
    for name in sorted(set(int(candidate) for candidate in candidates) | set(also)):
        try:
            fields = _stat_fields(name)
        except OSError:
            continue
        if int(fields[1]) != pid:
            continue
        if fields[0] == "Z":
            exited.append(name)
        elif fields[0] != "X":
            running.append(name)
    return running, exited


def _listed_children(pid):
    """The pids the kernel lists as children of ``pid``'s threads; None where it lists none
    (a kernel without CONFIG_PROC_CHILDREN)."""
    if not os.path.exists("/proc/%d/task/%d/children" % (pid, pid)):
        return None
    found = []
    for thread in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, thread)) as listed:
                found.extend(listed.read().split())
        except OSError:
            # The thread ended meanwhile: its children went to another of the threads.
            continue
    return found


def _socket_fds():
    """The file descriptors of this process that are sockets."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in names:
        fd = int(name)
        try:
            if os.readlink("/proc/self/fd/%d" % fd).startswith("socket:"):
                yield fd
        except OSError:
            continue


def _kind(fd):
    """(family, whether it is a stream socket that is not listening) of socket ``fd``."""
    probe = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
    try:
        family = probe.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
        held = (family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)
                and probe.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
                and not probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    finally:
        probe.close()
    return family, held


def _add_address(found, fd, family, method):
    """Append ``getsockname()`` or ``getpeername()`` of socket ``fd``, if it has one."""
    try:
        # Addresses are decoded by the socket object's family: ask one of the right family.
        sock = socket.fromfd(fd, family, socket.SOCK_STREAM)
        try:
            found.append(jsonable(getattr(sock, method)()))
        finally:
            sock.close()
    except (OSError, ValueError):
        pass


def held_sockets():
    """(peers, stream_connections) from one walk over this process's sockets: the peer
    address of every connected IPv4 or IPv6 socket; and the local address of every stream
    socket (IPv4, IPv6 or Unix) that is not listening, which for a server is a connection
    it accepted and still holds, whatever state the connection itself is in."""
    peers = []
    connections = []
    for fd in _socket_fds():
        try:
            family, held = _kind(fd)
        except (OSError, ValueError):
            continue
        if family in (socket.AF_INET, socket.AF_INET6):
            _add_address(peers, fd, family, "getpeername")
        if held:
            _add_address(connections, fd, family, "getsockname")
    return peers, connections
