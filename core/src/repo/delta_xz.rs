//! An xz stream that stores its data without compressing it: one LZMA2 block of
//! uncompressed chunks (the xz file format 1.0.4, sections 2-3; LZMA2 chunk headers
//! `0x01`/`0x02`). For delta parts of data LZMA cannot shrink: libostree 2022.7 reads
//! uncompressed parts (compression byte 0) from a file by mapping it at offset 1, which
//! `mmap` refuses, so only `'x'` parts work, and LZMA's encoder runs at ~2 MB/s on random
//! bytes for nothing; this costs a copy and a CRC32.

/// LZMA2 uncompressed chunks hold at most 64 KiB.
const CHUNK: usize = 64 * 1024;

/// Stream flags: check type CRC32.
const FLAGS: [u8; 2] = [0, 1];

/// `data` as an xz stream.
pub(super) fn stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / CHUNK * 3 + 64);
    out.extend_from_slice(&[0xfd, b'7', b'z', b'X', b'Z', 0]);
    out.extend_from_slice(&FLAGS);
    out.extend_from_slice(&crc32(&FLAGS));
    let start = out.len();
    // Block header: 12 bytes (size byte 2), one filter: LZMA2 (0x21) with one property
    // byte, dictionary 1 MiB (16); padding; CRC32.
    let header = [2, 0, 0x21, 1, 16, 0, 0, 0];
    out.extend_from_slice(&header);
    out.extend_from_slice(&crc32(&header));
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        // 1: uncompressed, dictionary reset (the first); 2: uncompressed.
        out.push(if i == 0 { 1 } else { 2 });
        out.extend_from_slice(&((chunk.len() - 1) as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out.push(0);
    let unpadded = (out.len() - start) as u64 + 4;
    pad4(&mut out);
    out.extend_from_slice(&crc32(data));
    let index = index(unpadded, data.len() as u64);
    let backward = ((index.len() / 4 - 1) as u32).to_le_bytes();
    out.extend_from_slice(&index);
    let footer: Vec<u8> = backward.iter().chain(&FLAGS).copied().collect();
    out.extend_from_slice(&crc32(&footer));
    out.extend_from_slice(&footer);
    out.extend_from_slice(b"YZ");
    out
}

/// The index of one block: its unpadded and uncompressed sizes.
fn index(unpadded: u64, uncompressed: u64) -> Vec<u8> {
    let mut index = vec![0, 1];
    super::delta_part::write_varint(&mut index, unpadded);
    super::delta_part::write_varint(&mut index, uncompressed);
    pad4(&mut index);
    let crc = crc32(&index);
    index.extend_from_slice(&crc);
    index
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn crc32(data: &[u8]) -> [u8; 4] {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    crc.sum().to_le_bytes()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    #[test]
    fn liblzma_reads_it_back() {
        for len in [0, 1, 3, 65_536, 65_537, 200_003] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let xz = super::stored(&data);
            let mut back = Vec::new();
            xz2::read::XzDecoder::new(xz.as_slice())
                .read_to_end(&mut back)
                .unwrap_or_else(|e| panic!("{len} bytes: {e}"));
            assert_eq!(back, data, "{len} bytes");
        }
    }
}
