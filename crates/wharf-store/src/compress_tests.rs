use super::*;
use flate2::read::GzDecoder;
use std::process::{Command, Stdio};

fn opts(block_size: usize, threads: usize) -> GzOptions {
    GzOptions {
        level: 6,
        block_size,
        threads,
    }
}

/// Compressible but not trivial: text-ish records with a pseudo-random counter.
fn sample(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 64);
    let mut x: u32 = 0x1234_5678;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.extend_from_slice(format!("line {} value {:08x}\n", v.len() % 977, x % 4096).as_bytes());
    }
    v.truncate(len);
    v
}

fn gz(data: &[u8], o: GzOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let st = gzip_parallel(data, &mut out, o).unwrap();
    assert_eq!(st.input_bytes, data.len() as u64);
    assert_eq!(st.output_bytes, out.len() as u64);
    out
}

fn gunzip_flate2(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut d = GzDecoder::new(gz);
    d.read_to_end(&mut out).unwrap();
    // One member: nothing after the trailer.
    assert!(d.into_inner().is_empty());
    out
}

/// Checks `gz` with the system gzip: `gzip -t`, then `gzip -dc` must give back `data`.
fn check_with_gzip_tool(gz: &[u8], data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.gz");
    std::fs::write(&p, gz).unwrap();
    let st = Command::new("gzip").arg("-t").arg(&p).status().unwrap();
    assert!(st.success(), "gzip -t rejected the stream");
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&p)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout == data, "gzip -dc gave different bytes");
    // `gzip -l` reports the ISIZE from the trailer.
    let l = Command::new("gzip").arg("-lq").arg(&p).output().unwrap();
    let text = String::from_utf8_lossy(&l.stdout);
    let isize: u64 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(isize, data.len() as u64 % (1 << 32), "{text}");
}

#[test]
fn round_trip_flate2_and_gzip_tool() {
    let block = 64 << 10;
    for len in [
        0,
        1,
        1000,
        block - 1,
        block,
        block + 1,
        3 * block,
        5 * block + 12345,
    ] {
        let data = sample(len);
        for threads in [1, 3] {
            let z = gz(&data, opts(block, threads));
            assert_eq!(&z[..3], &[0x1f, 0x8b, 8], "len {len}");
            assert!(gunzip_flate2(&z) == data, "len {len} threads {threads}");
            check_with_gzip_tool(&z, &data);
        }
    }
}

#[test]
fn default_block_size_and_levels() {
    let data = sample(2 * BLOCK_SIZE + 777);
    for level in [0, 1, 6, 9] {
        let o = GzOptions {
            level,
            ..GzOptions::default()
        };
        let z = gz(&data, o);
        assert!(gunzip_flate2(&z) == data, "level {level}");
        check_with_gzip_tool(&z, &data);
        if level > 0 {
            assert!(z.len() < data.len() / 2, "level {level}: {}", z.len());
        }
    }
}

#[test]
fn deterministic_across_threads_and_write_sizes() {
    let block = 32 << 10;
    let data = sample(10 * block + 5);
    let one = gz(&data, opts(block, 1));
    for threads in [2, 4, 7] {
        assert!(gz(&data, opts(block, threads)) == one, "threads {threads}");
    }
    // Odd write sizes through the `Write` impl give the same bytes.
    for chunk in [1usize, 7, 4096, block, block + 1] {
        let mut enc = ParGzEncoder::new(Vec::new(), opts(block, 2)).unwrap();
        for c in data.chunks(chunk) {
            enc.write_all(c).unwrap();
            enc.flush().unwrap();
        }
        let (out, _) = enc.finish().unwrap();
        assert!(out == one, "chunk {chunk}");
    }
    // And running it again does too.
    assert!(gz(&data, opts(block, 2)) == one);
}

#[test]
fn empty_input_is_a_valid_member() {
    let z = gz(&[], GzOptions::default());
    assert!(gunzip_flate2(&z).is_empty());
    check_with_gzip_tool(&z, &[]);
    // header + final empty block + trailer (crc 0, isize 0)
    assert_eq!(&z[z.len() - 8..], &[0u8; 8]);
}

#[test]
fn incompressible_input() {
    let mut data = vec![0u8; 300 << 10];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in &mut data {
        x ^= x << 7;
        x ^= x >> 9;
        *b = x as u8;
    }
    let z = gz(&data, opts(64 << 10, 2));
    assert!(gunzip_flate2(&z) == data);
    check_with_gzip_tool(&z, &data);
}

#[test]
fn dropping_unfinished_encoder_stops_workers() {
    let mut enc = ParGzEncoder::new(Vec::new(), opts(4096, 3)).unwrap();
    enc.write_all(&sample(100_000)).unwrap();
    drop(enc); // joins the pool; must not hang
}

#[test]
fn media_types() {
    assert_eq!(
        gzip_media_type(oci::MEDIA_OCI_LAYER),
        Some(oci::MEDIA_OCI_LAYER_GZIP)
    );
    assert_eq!(
        gzip_media_type(oci::MEDIA_DOCKER_LAYER),
        Some(oci::MEDIA_DOCKER_LAYER_GZIP)
    );
    assert_eq!(gzip_media_type(oci::MEDIA_OCI_LAYER_GZIP), None);
    assert_eq!(gzip_media_type(oci::MEDIA_OCI_LAYER_ZSTD), None);
    assert_eq!(gzip_media_type(oci::MEDIA_DOCKER_LAYER_GZIP), None);
}

/// CPU seconds (user + system) this process used so far (`/proc/self/stat`, 100 Hz ticks).
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Throughput on real files: `WHARF_GZ_BENCH=/path/to/file.tar cargo test --release -p
/// wharf-store compress::tests::bench -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench() {
    let Ok(path) = std::env::var("WHARF_GZ_BENCH") else {
        eprintln!("set WHARF_GZ_BENCH");
        return;
    };
    let data = std::fs::read(&path).unwrap();
    let mb = data.len() as f64 / 1e6;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for level in [1, 6] {
        for t in [1, threads] {
            let start = std::time::Instant::now();
            let cpu0 = cpu_secs();
            let z = gz(
                &data,
                GzOptions {
                    level,
                    block_size: BLOCK_SIZE,
                    threads: t,
                },
            );
            let secs = start.elapsed().as_secs_f64();
            let cpu = cpu_secs() - cpu0;
            eprintln!(
                "level {level} threads {t}: {:.1} MB/s wall, {:.1} MB/s per CPU second, {} -> {} bytes, ratio {:.4}",
                mb / secs,
                mb / cpu,
                data.len(),
                z.len(),
                z.len() as f64 / data.len() as f64
            );
        }
    }
}

fn layer_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let data = sample(300_000);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "etc/data.txt", &data[..]).unwrap();
    b.into_inner().unwrap()
}

fn ingest_is_empty(root: &std::path::Path) -> bool {
    std::fs::read_dir(root.join("ingest"))
        .unwrap()
        .next()
        .is_none()
}

#[test]
fn gzip_layer_makes_twin_once_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s")).unwrap();
    let tar = layer_tar();
    let (d, size) = write_blob(&store.blobs, &store.ingest, &tar).unwrap();
    let desc = |mt: &str| Descriptor {
        media_type: mt.to_string(),
        digest: d.clone(),
        size,
        annotations: None,
        platform: None,
    };

    // A wrong diff_id: refused, nothing recorded, no ingest leftovers.
    let wrong = Digest::of(b"not the layer");
    let err = store
        .gzip_layer(&wrong, &desc(oci::MEDIA_DOCKER_LAYER))
        .unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    assert!(Index::load(&store.images_json)
        .unwrap()
        .compressed
        .is_empty());
    assert!(ingest_is_empty(store.root()));

    // Docker flavour.
    let gz = store
        .gzip_layer(&d, &desc(oci::MEDIA_DOCKER_LAYER))
        .unwrap();
    assert_eq!(gz.media_type, oci::MEDIA_DOCKER_LAYER_GZIP);
    assert_ne!(gz.digest, d);
    let bytes = std::fs::read(blob_path(&store.blobs, &gz.digest)).unwrap();
    assert_eq!(bytes.len() as u64, gz.size);
    assert_eq!(Digest::of(&bytes), gz.digest);
    assert!(gunzip_flate2(&bytes) == tar);
    check_with_gzip_tool(&bytes, &tar);
    let idx = Index::load(&store.images_json).unwrap();
    let e = idx.compressed.get(d.hex()).unwrap();
    assert_eq!((&e.blob, e.blob_size, e.size), (&gz.digest, gz.size, size));
    assert!(ingest_is_empty(store.root()));

    // Second call: the recorded twin, not compressed again (its file is untouched).
    let mtime = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let gz_path = blob_path(&store.blobs, &gz.digest);
    let before = mtime(&gz_path);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // OCI flavour of the same layer: same bytes, OCI media type.
    let gz2 = store.gzip_layer(&d, &desc(oci::MEDIA_OCI_LAYER)).unwrap();
    assert_eq!(gz2.media_type, oci::MEDIA_OCI_LAYER_GZIP);
    assert_eq!((&gz2.digest, gz2.size), (&gz.digest, gz.size));
    assert_eq!(mtime(&gz_path), before);

    // Already compressed: returned unchanged.
    assert_eq!(store.gzip_layer(&d, &gz).unwrap(), gz);
    let z = Descriptor {
        media_type: oci::MEDIA_OCI_LAYER_ZSTD.to_string(),
        ..gz.clone()
    };
    assert_eq!(store.gzip_layer(&d, &z).unwrap(), z);

    // Twin blob gone (e.g. removed by hand): made again, same digest (deterministic).
    std::fs::remove_file(&gz_path).unwrap();
    let gz3 = store.gzip_layer(&d, &desc(oci::MEDIA_OCI_LAYER)).unwrap();
    assert_eq!(gz3.digest, gz.digest);
    assert!(gz_path.is_file());

    // Manifest blobs for push.
    let (md, ms) = store.write_manifest_blob(b"{\"schemaVersion\":2}").unwrap();
    assert_eq!(ms, 19);
    assert!(store.has_blob(&md));
}
