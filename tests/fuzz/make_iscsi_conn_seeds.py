#!/usr/bin/env python3
"""Writes the seeds of fuzz_iscsi_conn into tests/fuzz/corpus/iscsi_conn (the files are committed;
run this again only to change them). Each seed is fuzz_iscsi_conn's flag byte, then what the
initiator sends: with the harness's login (flag bit 0 clear) the session is in full feature phase
with CmdSN 1 expected and StatSN 1 next, FirstBurstLength 16384, ImmediateData=Yes, InitialR2T=No,
the target's first R2T has TTT 0."""
import os
import struct

RAW, DIGESTS, FRAME, BAD_DD = 0x01, 0x02, 0x04, 0x08
SLOW_READ = 0x08  # without FRAME: a small receive buffer, a pause before reading
IQN = b"iqn.2026-11.org.storstack:default"


def pieces(n, size_index):
    return ((n - 1) << 4) | (size_index << 6)


def pad(b):
    return b + b"\0" * (-len(b) % 4)


def bhs(op, flags, dlen=0, itt=0, lun=0, f20=0, f24=0, f28=1, rest=b""):
    h = bytes([op, flags, 0, 0, 0]) + dlen.to_bytes(3, "big")
    h += struct.pack(">Q", lun) + struct.pack(">IIII", itt, f20, f24, f28)
    h += rest.ljust(16, b"\0")
    assert len(h) == 48
    return h


def pdu(op, flags, data=b"", **kw):
    return bhs(op, flags, len(data), **kw) + pad(data)


LUN1 = 1 << 48  # LUN 1, peripheral addressing (byte 1): the file-backed disk


def scsi_cmd(flags, itt, cmdsn, edtl, cdb, data=b"", lun=0):
    return pdu(0x01, flags, data, itt=itt, lun=lun, f20=edtl, f24=cmdsn, rest=cdb)


def data_out(itt, ttt, datasn, offset, data, final=True):
    return pdu(0x05, 0x80 if final else 0, data, itt=itt, f20=ttt, f24=0, f28=1,
               rest=struct.pack(">III", 0, datasn, offset))


def login_text(*pairs):
    return b"".join(p + b"\0" for p in pairs)


def login(csg, nsg, transit, text, itt=1, cmdsn=1, expstatsn=0):
    flags = (0x80 if transit else 0) | csg << 2 | nsg
    h = bytes([0x43, flags, 0, 0, 0]) + len(text).to_bytes(3, "big")
    h += bytes([0x80, 0, 0, 0, 0, 0x2a, 0, 0])  # ISID, TSIH 0
    h += struct.pack(">IIII", itt, 0, cmdsn, expstatsn) + b"\0" * 16
    return h + pad(text)


def seeds():
    s = {}
    name = b"InitiatorName=iqn.2026-11.org.storstack:seed"
    # login only: security stage (AuthMethod=None), then operational to full feature phase
    s["login_only"] = bytes([RAW]) + login(0, 1, True, login_text(
        name, b"TargetName=" + IQN, b"SessionType=Normal", b"AuthMethod=None")) + login(
            1, 3, True, login_text(b"HeaderDigest=None", b"DataDigest=None",
                                   b"MaxRecvDataSegmentLength=8192", b"ImmediateData=Yes",
                                   b"InitialR2T=No"), itt=2, expstatsn=1)
    # discovery login (raw), SendTargets, Logout
    s["discovery_sendtargets"] = bytes([RAW]) + login(1, 3, True, login_text(
        name, b"SessionType=Discovery", b"MaxRecvDataSegmentLength=8192")) + pdu(
            0x04, 0x80, b"SendTargets=All\0", itt=2, f20=0xffffffff, f24=1) + pdu(
                0x46, 0x80, itt=3, f24=2, f28=2)
    inquiry = bytes([0x12, 0, 0, 0, 96, 0])
    s["inquiry"] = bytes([0]) + scsi_cmd(0xc1, 0x10, 1, 96, inquiry)
    # WRITE(10) 32 KiB at LBA 8: 8 KiB immediate, 8 KiB unsolicited Data-Out to FirstBurstLength,
    # the rest after the R2T (TTT 0) in two Data-Out; digests negotiated, the harness frames
    wr = bytes(range(256)) * 128
    cdb = bytes([0x2a, 0, 0, 0, 0, 8, 0, 0, 64, 0])
    s["write10_immediate_dataout_r2t"] = bytes([DIGESTS | FRAME]) + scsi_cmd(
        0x21, 0x20, 1, 32768, cdb, wr[:8192]) + data_out(
            0x20, 0xffffffff, 0, 8192, wr[8192:16384]) + data_out(
                0x20, 0, 0, 16384, wr[16384:24576], final=False) + data_out(
                    0x20, 0, 1, 24576, wr[24576:])
    s["read10_64k"] = bytes([0]) + scsi_cmd(0xc1, 0x30, 1, 65536,
                                            bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 128, 0]))
    s["nop_out_data"] = bytes([0]) + pdu(0x40, 0x80, bytes(range(100)), itt=0x40,
                                         f20=0xffffffff, f24=1)
    s["text_sendtargets"] = bytes([0]) + pdu(0x04, 0x80, b"SendTargets=All\0", itt=0x50,
                                             f20=0xffffffff, f24=1)
    # a WRITE(10) waiting for its unsolicited data, then ABORT TASK of it
    s["tmf_abort_task"] = bytes([0]) + scsi_cmd(
        0x21 & ~0x80 | 0x20, 0x60, 1, 16384, bytes([0x2a, 0, 0, 0, 0, 0, 0, 0, 32, 0]),
        wr[:4096]) + pdu(0x42, 0x81, itt=0x61, f20=0x60, f24=2,
                         rest=struct.pack(">II", 1, 0))
    s["logout"] = bytes([0]) + pdu(0x46, 0x80, itt=0x70, f24=1)
    # INQUIRY then a NOP-Out, the INQUIRY's header cut after 20 bytes (two pieces)
    s["header_cut"] = bytes([pieces(2, 1)]) + scsi_cmd(0xc1, 0x80, 1, 96, inquiry) + pdu(
        0x40, 0x80, b"ping", itt=0x81, f20=0xffffffff, f24=2)
    # back-pressure: READ(10) of 1 MiB (128 Data-In, past ISCSI_TXQ_HIGH) with 70 INQUIRY behind
    # it in one send, in four pieces of 100 bytes and the rest
    big = scsi_cmd(0xc1, 0x90, 1, 1 << 20, bytes([0x28, 0, 0, 0, 0, 0, 0, 8, 0, 0]))
    big += b"".join(scsi_cmd(0xc1, 0x100 + i, 2 + i, 96, inquiry) for i in range(70))
    s["read10_1m_and_70_inquiry"] = bytes([pieces(4, 2)]) + big
    s["read10_1m_slow_reader"] = bytes([SLOW_READ]) + big
    # TARGET COLD RESET: this connection and the harness's idle second session close
    s["tmf_target_cold_reset"] = bytes([0]) + pdu(0x42, 0x87, itt=0xe0, f20=0xffffffff, f24=1)
    s["tmf_lun_reset"] = bytes([0]) + scsi_cmd(0xc1, 0xa0, 1, 96, inquiry) + pdu(
        0x42, 0x85, itt=0xa1, f20=0xffffffff, f24=2)
    # unsolicited Data-Out with DataSN 1 where 0 is expected: DATA PHASE ERROR, session goes on
    s["write10_bad_datasn"] = bytes([0]) + scsi_cmd(
        0x21, 0xb0, 1, 8192, bytes([0x2a, 0, 0, 0, 0, 0, 0, 0, 16, 0]), wr[:4096]) + data_out(
            0xb0, 0xffffffff, 1, 4096, wr[4096:8192]) + scsi_cmd(0xc1, 0xb1, 2, 96, inquiry)
    # digests: a NOP-Out whose data digest is wrong (Reject 02h), then an INQUIRY
    s["digest_bad_data_digest"] = bytes([DIGESTS | FRAME | BAD_DD]) + scsi_cmd(
        0xc1, 0xc0, 1, 96, inquiry) + pdu(0x40, 0x80, b"ping" * 8, itt=0xc1, f20=0xffffffff,
                                          f24=2)
    # LUN 1 (file, io_uring: completions on another thread): WRITE(10) 8 KiB immediate, READ(10)
    # of it, and a READ(10) of 1 MiB still going when the input ends (teardown waits for it)
    s["lun1_write_read_then_close"] = bytes([0]) + scsi_cmd(
        0xa1, 0xd0, 1, 8192, bytes([0x2a, 0, 0, 0, 0, 16, 0, 0, 16, 0]), wr[:8192],
        lun=LUN1) + scsi_cmd(0xc1, 0xd1, 2, 8192, bytes([0x28, 0, 0, 0, 0, 16, 0, 0, 16, 0]),
                             lun=LUN1) + scsi_cmd(
                                 0xc1, 0xd2, 3, 1 << 20,
                                 bytes([0x28, 0, 0, 0, 0, 0, 0, 8, 0, 0]), lun=LUN1)
    return s


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "iscsi_conn")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
