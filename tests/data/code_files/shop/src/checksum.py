"""CRC-8 over small payloads, with the polynomial's table built on import."""

POLY = 0x07
TABLE = []
for byte in range(256):
    crc = byte
    for _ in range(8):
        crc = ((crc << 1) ^ POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    TABLE.append(crc)

MAGIC = bytes([0xDE, 0xAD, 0xBE, 0xEF])


def crc8(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = TABLE[crc ^ b]
    return crc
