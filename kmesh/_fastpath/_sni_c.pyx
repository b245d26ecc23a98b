# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Reads the server name (SNI) and ALPN list from a TLS ClientHello: the compiled twin of ``_sni_py``.

``_sni_py`` is the specification: its module docstring lists every check, and this module must return an
equal result for every input (the tests compare the two on real handshakes and with Hypothesis). The
structure is the same, step for step, so that a change to one is easy to mirror in the other.

How it differs, and why:
- It reads the caller's buffer through a raw pointer (the buffer protocol with ``PyBUF_SIMPLE``, or the
  bytes object's own storage), without a copy and without a typed memoryview, whose set-up alone costs
  more than the whole parse. A non-contiguous memoryview, which ``PyBUF_SIMPLE`` refuses, is copied
  first, as the Python twin copies every non-``bytes`` input.
- The record walk is plain C: it only reads headers and never allocates. A message split over several
  records is copied once into a buffer of its exact length before the body is parsed.
- The host name is validated and lowercased in one pass, by table lookup, into a stack buffer.
- The last ALPN list is kept with its tuple, which is reused when the next hello sends the same list
  (clients of one kind always do): it changes no result, since the tuple is immutable and equal.
- Every index is checked against the end of its field before it is read (``boundscheck`` is off).
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.string cimport memcmp, memcpy

cdef extern from "Python.h":
    # Declared here because Cython's own declaration takes an object for ``exc``, where NULL is wanted.
    Py_ssize_t PyNumber_AsSsize_t(object o, PyObject* exc) except? -1

from kmesh._fastpath._sni_types import (
    RESULT_NEED_MORE,
    RESULT_NO_SNI,
    RESULT_NOT_TLS,
    RESULT_TOO_LARGE,
    SniResult,
    SniStatus,
)

__all__ = ["parse_client_hello"]

ctypedef unsigned char uchar

cdef enum:
    # The values of SniStatus, plus one internal code.
    S_NEED_MORE = 0
    S_FOUND = 1
    S_NO_SNI = 2
    S_NOT_TLS = 3
    S_TOO_LARGE = 4
    S_COMPLETE = 100  # the record walk found a complete ClientHello message

    RECORD_HANDSHAKE = 22
    CLIENT_HELLO = 1
    MAX_RECORD_LEN = 16384
    EXT_SERVER_NAME = 0
    EXT_ALPN = 16
    NAME_TYPE_HOST = 0
    MAX_HOST_NAME = 253


cdef object _SniResult = SniResult
cdef object _FOUND = SniStatus.FOUND
cdef object _NO_SNI_STATUS = SniStatus.NO_SNI
cdef object _NEED_MORE = RESULT_NEED_MORE
cdef object _NOT_TLS = RESULT_NOT_TLS
cdef object _TOO_LARGE = RESULT_TOO_LARGE
cdef object _NO_SNI = RESULT_NO_SNI
cdef tuple _NO_ALPN = ()


cdef struct Walk:
    # What the record walk learned about a complete message.
    Py_ssize_t total  # handshake message length with its 4-byte header
    Py_ssize_t records  # how many records carry it


cdef struct Hello:
    # Where the parsed fields are, as offsets into the message buffer.
    Py_ssize_t name_len  # the lowercased name is in the caller's buffer; -1: no host_name
    Py_ssize_t alpn_off  # the first ALPN entry (its length byte)
    Py_ssize_t alpn_end
    Py_ssize_t alpn_count  # 0: no ALPN extension


cdef int _walk_records(const uchar* buf, Py_ssize_t n, Py_ssize_t limit, Walk* walk) noexcept nogil:
    """Walks the complete records of ``buf[:n]``; S_COMPLETE when they hold the whole message."""
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t got = 0
    cdef Py_ssize_t total = -1
    cdef Py_ssize_t rlen, start, end, need, k
    cdef uchar header[4]
    cdef Py_ssize_t header_len = 0
    walk.records = 0
    while True:
        if n - pos < 5:
            if pos < n and buf[pos] != RECORD_HANDSHAKE:
                return S_NOT_TLS
            if pos + 1 < n and buf[pos + 1] != 3:
                return S_NOT_TLS
            return S_TOO_LARGE if n >= limit else S_NEED_MORE
        if buf[pos] != RECORD_HANDSHAKE or buf[pos + 1] != 3:
            return S_NOT_TLS
        rlen = (<Py_ssize_t>buf[pos + 3] << 8) | buf[pos + 4]
        if rlen == 0 or rlen > MAX_RECORD_LEN:
            return S_NOT_TLS
        start = pos + 5
        end = start + rlen
        need = end
        if total >= 0 and total - got > rlen:
            need = end + 5 + (total - got - rlen)
        if need > limit:
            return S_TOO_LARGE
        if end > n:
            return S_NEED_MORE
        walk.records += 1
        got += rlen
        if total < 0:
            k = start
            while header_len < 4 and k < end:
                header[header_len] = buf[k]
                header_len += 1
                k += 1
            if header[0] != CLIENT_HELLO:
                return S_NOT_TLS
            if header_len == 4:
                total = 4 + ((<Py_ssize_t>header[1] << 16) | (<Py_ssize_t>header[2] << 8) | header[3])
                if got < total and end + 5 + (total - got) > limit:
                    return S_TOO_LARGE
        if 0 <= total <= got:
            walk.total = total
            return S_COMPLETE
        pos = end


cdef void _gather(const uchar* buf, Py_ssize_t total, uchar* out) noexcept nogil:
    """Copies the payloads of the (already validated) records at ``buf`` until ``total`` bytes."""
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t got = 0
    cdef Py_ssize_t rlen
    while got < total:
        rlen = (<Py_ssize_t>buf[pos + 3] << 8) | buf[pos + 4]
        if rlen > total - got:
            rlen = total - got
        memcpy(out + got, buf + pos + 5, <size_t>rlen)
        got += rlen
        pos += 5 + rlen


# Host name characters by class, and their lowercase forms: one table lookup per byte.
cdef enum:
    HOST_BAD = 0
    HOST_LETTER = 1  # letters and "_"
    HOST_DIGIT = 2
    HOST_HYPHEN = 3
    HOST_DOT = 4

cdef uchar _HOST_CLASS[256]
cdef uchar _LOWER[256]


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(256):
        _HOST_CLASS[c] = HOST_BAD
        _LOWER[c] = <uchar>c
    for c in range(26):
        _HOST_CLASS[97 + c] = HOST_LETTER
        _HOST_CLASS[65 + c] = HOST_LETTER
        _LOWER[65 + c] = <uchar>(97 + c)
    for c in range(10):
        _HOST_CLASS[48 + c] = HOST_DIGIT
    _HOST_CLASS[95] = HOST_LETTER  # "_"
    _HOST_CLASS[45] = HOST_HYPHEN
    _HOST_CLASS[46] = HOST_DOT


_init_tables()


cdef Py_ssize_t _host_name(const uchar* s, Py_ssize_t n, uchar* lower) noexcept nogil:
    """Validates a host name (rules in _sni_py), writes it lowercased to ``lower`` and returns its length
    without a trailing dot; -1 if it is not valid."""
    cdef Py_ssize_t i
    cdef Py_ssize_t label_len = 0
    cdef bint all_digits = True
    cdef uchar c, kind
    if n > 0 and s[n - 1] == 46:  # one trailing dot is dropped, as in _sni_py
        n -= 1
    if n == 0 or n > MAX_HOST_NAME:
        return -1
    for i in range(n):
        c = s[i]
        kind = _HOST_CLASS[c]
        if kind == HOST_DOT:
            if label_len == 0 or s[i - 1] == 45:  # an empty label, or one ending in "-"
                return -1
            label_len = 0
            all_digits = True
        elif kind == HOST_BAD or (kind == HOST_HYPHEN and label_len == 0):
            return -1
        else:
            label_len += 1
            if label_len > 63:
                return -1
            if kind != HOST_DIGIT:
                all_digits = False
        lower[i] = _LOWER[c]
    if label_len == 0 or s[n - 1] == 45 or all_digits:
        return -1
    return n


cdef bint _server_name(const uchar* b, Py_ssize_t p, Py_ssize_t end, Hello* h, uchar* lower) noexcept nogil:
    """Parses a server_name extension body ``b[p:end]``; False when malformed."""
    cdef Py_ssize_t name_len, name_end
    if end - p < 3 or p + 2 + ((<Py_ssize_t>b[p] << 8) | b[p + 1]) != end:
        return False
    p += 2
    while p < end:
        if p + 3 > end:
            return False
        name_len = (<Py_ssize_t>b[p + 1] << 8) | b[p + 2]
        name_end = p + 3 + name_len
        if name_len == 0 or name_end > end:
            return False
        if b[p] == NAME_TYPE_HOST:
            if h.name_len >= 0:
                return False
            h.name_len = _host_name(b + p + 3, name_len, lower)
            if h.name_len < 0:
                return False
        p = name_end
    return True


cdef bint _alpn(const uchar* b, Py_ssize_t p, Py_ssize_t end, Hello* h) noexcept nogil:
    """Checks an ALPN extension body ``b[p:end]`` and records where its entries are."""
    cdef Py_ssize_t name_end
    cdef Py_ssize_t count = 0
    if end - p < 3 or p + 2 + ((<Py_ssize_t>b[p] << 8) | b[p + 1]) != end:
        return False
    p += 2
    h.alpn_off = p
    h.alpn_end = end
    while p < end:
        name_end = p + 1 + b[p]
        if name_end == p + 1 or name_end > end:
            return False
        count += 1
        p = name_end
    h.alpn_count = count
    return True


cdef int _parse_body(const uchar* b, Py_ssize_t p, Py_ssize_t end, Hello* h, uchar* lower) noexcept nogil:
    """Parses the ClientHello body ``b[p:end]``: S_FOUND, S_NO_SNI or S_NOT_TLS."""
    cdef Py_ssize_t session_id_len, suites_len, methods_len, ext_type, ext_end
    cdef bint seen_sni = False
    cdef bint seen_alpn = False
    h.name_len = -1
    h.alpn_count = 0
    if end - p < 35 or b[p] != 3:
        return S_NOT_TLS
    p += 34
    session_id_len = b[p]
    if session_id_len > 32:
        return S_NOT_TLS
    p += 1 + session_id_len
    if p + 2 > end:
        return S_NOT_TLS
    suites_len = (<Py_ssize_t>b[p] << 8) | b[p + 1]
    if suites_len < 2 or suites_len & 1:
        return S_NOT_TLS
    p += 2 + suites_len
    if p >= end:
        return S_NOT_TLS
    methods_len = b[p]
    if methods_len == 0:
        return S_NOT_TLS
    p += 1 + methods_len
    if p == end:
        return S_NO_SNI
    if p + 2 > end or p + 2 + ((<Py_ssize_t>b[p] << 8) | b[p + 1]) != end:
        return S_NOT_TLS
    p += 2
    while p < end:
        if p + 4 > end:
            return S_NOT_TLS
        ext_type = (<Py_ssize_t>b[p] << 8) | b[p + 1]
        ext_end = p + 4 + ((<Py_ssize_t>b[p + 2] << 8) | b[p + 3])
        if ext_end > end:
            return S_NOT_TLS
        if ext_type == EXT_SERVER_NAME:
            if seen_sni:
                return S_NOT_TLS
            seen_sni = True
            if not _server_name(b, p + 4, ext_end, h, lower):
                return S_NOT_TLS
        elif ext_type == EXT_ALPN:
            if seen_alpn:
                return S_NOT_TLS
            seen_alpn = True
            if not _alpn(b, p + 4, ext_end, h):
                return S_NOT_TLS
        p = ext_end
    return S_FOUND if h.name_len >= 0 else S_NO_SNI


# The last ALPN list built, as (its wire bytes, its tuple): clients of one kind all send the same list, and
# reusing the immutable tuple saves three allocations per hello. Replaced in one assignment, under the GIL.
cdef tuple _last_alpn = (b"", ())


cdef tuple _alpn_tuple(const uchar* b, Hello* h):
    global _last_alpn
    cdef const uchar* wire = b + h.alpn_off
    cdef Py_ssize_t size = h.alpn_end - h.alpn_off
    cdef tuple last = _last_alpn
    cdef bytes last_wire = <bytes>last[0]
    if PyBytes_GET_SIZE(last_wire) == size and memcmp(PyBytes_AS_STRING(last_wire), wire, <size_t>size) == 0:
        return <tuple>last[1]
    cdef tuple names = PyTuple_New(h.alpn_count)
    cdef Py_ssize_t p = 0
    cdef Py_ssize_t i
    cdef bytes name
    for i in range(h.alpn_count):
        name = PyBytes_FromStringAndSize(<char*>wire + p + 1, wire[p])
        Py_INCREF(name)  # PyTuple_SET_ITEM steals a reference
        PyTuple_SET_ITEM(names, i, name)
        p += 1 + wire[p]
    _last_alpn = (PyBytes_FromStringAndSize(<char*>wire, size), names)
    return names


cdef object _result(const uchar* buf, Py_ssize_t n, Py_ssize_t limit):
    cdef Walk walk
    cdef Hello hello
    cdef uchar lower[MAX_HOST_NAME]
    cdef const uchar* msg
    cdef uchar* copy = NULL
    cdef int status
    cdef tuple alpn
    if n > limit:
        n = limit if limit > 0 else 0
    status = _walk_records(buf, n, limit, &walk)
    if status == S_NEED_MORE:
        return _NEED_MORE
    if status == S_NOT_TLS:
        return _NOT_TLS
    if status == S_TOO_LARGE:
        return _TOO_LARGE
    if walk.records == 1:
        msg = buf + 5
    else:
        copy = <uchar*>PyMem_Malloc(<size_t>walk.total)
        if copy == NULL:
            raise MemoryError()
        _gather(buf, walk.total, copy)
        msg = copy
    try:
        status = _parse_body(msg, 4, walk.total, &hello, lower)
        if status == S_NOT_TLS:
            return _NOT_TLS
        alpn = _alpn_tuple(msg, &hello) if hello.alpn_count else _NO_ALPN
        if status == S_FOUND:
            return _SniResult(_FOUND, PyUnicode_DecodeASCII(<char*>lower, hello.name_len, NULL), alpn)
        if hello.alpn_count:
            return _SniResult(_NO_SNI_STATUS, None, alpn)
        return _NO_SNI
    finally:
        if copy != NULL:
            PyMem_Free(copy)


def parse_client_hello(data, max_bytes=16384):
    """Parses the start of a TLS stream; ``_sni_py.parse_client_hello`` documents the rules.

    Raises ``TypeError`` if ``data`` is not bytes-like or ``max_bytes`` is not an integer; never for the
    content of ``data``.
    """
    # PyNumber_AsSsize_t with no exception type clamps huge integers, which the Python twin handles the
    # same way (no ClientHello is anywhere near 2**63 bytes); it raises TypeError for a non-integer.
    cdef Py_ssize_t limit = PyNumber_AsSsize_t(max_bytes, NULL)
    cdef Py_buffer view
    if type(data) is bytes:
        return _result(<const uchar*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), limit)
    try:
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    except BufferError:
        # Not contiguous: copied, as the Python twin copies every input that is not bytes.
        data = memoryview(data).tobytes()
        return _result(<const uchar*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), limit)
    try:
        return _result(<const uchar*>view.buf, view.len, limit)
    finally:
        PyBuffer_Release(&view)
