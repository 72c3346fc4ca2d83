//! `Repo::import_archive` against its contract (tar_import/CONTRACT.md; the rules and their
//! reasons are in docs/ARCHITECTURE.md, "Tar imports"), with archives written header by
//! header (tar_import/tar.rs):
//!
//! - a property: generated archives, mostly plausible and sometimes hostile, damaged or
//!   compressed (tar_import/gen.rs), either import to exactly the tree the contract's model
//!   predicts (tar_import/model.rs), read back with the `ostree` CLI, or are refused with a
//!   first line naming the entry as written (or the stream damage); `ostree fsck` is clean
//!   and no ref moves either way; the import runs in a child process, so a signal, a panic
//!   or a hang is a failing, shrinkable case (tar_import/observe.rs);
//! - a comparison with `ostree commit --tree=tar=FILE --tar-autocreate-parents` for
//!   well-formed archives (the same root tree checksums), an OpenEmbedded-like one included;
//! - one plain test per hostile class the contract names, and a few that must import.
//!
//! Needs the `ostree` CLI and gzip, bzip2, xz, zstd; not root. By default 256 generated
//! cases of the property (about 65 ms each) and 64 of the comparison (about 105 ms each):
//! about 25 s on 2 cores. `PROPTEST_CASES=N` sets both. A longer run, before a release or
//! after changing the importer (about 10 minutes on 2 cores):
//!
//!     PROPTEST_CASES=5000 cargo test -p ostree-build-core --test tar_import
//!
//! A failure prints the shrunk archive's entries; `TAR_IMPORT_KEEP=DIR` keeps a copy of
//! every archive imported, to look at with `tar -tvv` or commit with `ostree commit`.

#[path = "tar_import/gen.rs"]
mod gen;
#[path = "tar_import/model.rs"]
mod model;
#[path = "tar_import/observe.rs"]
mod observe;
#[path = "tar_import/tar.rs"]
mod tar;

use gen::{Case, Damage};
use model::{Break, Node, NodeKind, Outcome, Refusal, Tree, MAX_ID};
use observe::Imported;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use tar::{Compression, Entry, Kind, Text, Via, XKey, BLOCK};

/// Does nothing unless `observe::import` runs this binary to import in a child process.
#[test]
fn child_import() {
    observe::child_main();
}

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    ProptestConfig {
        cases: cases.unwrap_or(default_cases),
        failure_persistence: None,
        max_shrink_iters: 4096,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn imports_what_the_contract_says(case in gen::case()) {
        let dir = tempdir();
        let (archive, brk) = write_case(dir.path(), &case);
        let outcome = model::predict(&case.entries, brk);
        check(dir.path(), &archive, &outcome).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn well_formed_archives_equal_ostree_commit(
        entries in gen::well_formed(),
        compression in gen::compression(),
    ) {
        equals_ostree_commit(&entries, compression).map_err(TestCaseError::fail)?;
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes the case's archive into `dir`: the file, and where its stream breaks.
fn write_case(dir: &Path, case: &Case) -> (PathBuf, Option<Break>) {
    let mut written = tar::write(&case.entries);
    let brk = case.damage.and_then(|d| damage(&mut written, d));
    (write_file(dir, &written.bytes, case.compression), brk)
}

fn write_file(dir: &Path, tar: &[u8], compression: Compression) -> PathBuf {
    let path = dir.join(format!("archive.tar{}", extension(compression)));
    std::fs::write(&path, tar::compress(tar, compression)).expect("write archive");
    path
}

fn extension(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "",
        Compression::Gzip => ".gz",
        Compression::Bzip2 => ".bz2",
        Compression::Xz => ".xz",
        Compression::Zstd => ".zst",
    }
}

/// Cuts the stream inside an entry (never at a block boundary before its data: a stream
/// ending there is not clearly truncated) or breaks one of its header checksums.
fn damage(w: &mut tar::Written, d: Damage) -> Option<Break> {
    let entry = d.entry.index(w.spans.len().max(1));
    let span = w.spans.get(entry)?;
    let start = span.headers[0];
    if d.cut {
        let cuts: Vec<usize> = (start + 1..span.data_end)
            .filter(|c| *c > span.data_start || (c - start) % BLOCK != 0)
            .collect();
        let at = cuts[d.at.index(cuts.len())];
        let header_read = at >= span.main + BLOCK;
        w.bytes.truncate(at);
        return Some(Break {
            entry,
            header_read,
            first_block: at < BLOCK,
        });
    }
    let at = span.headers[d.at.index(span.headers.len())];
    tar::corrupt_checksum(&mut w.bytes, at);
    Some(Break {
        entry,
        header_read: false,
        first_block: at == 0,
    })
}

/// Imports `archive` into `dir/repo` and holds the result against `outcome`; the
/// repository must pass `ostree fsck` either way.
fn check(dir: &Path, archive: &Path, outcome: &Outcome) -> Result<Imported, String> {
    keep(archive);
    let repo = dir.join("repo");
    let imported = observe::import(archive, &repo);
    match (outcome, &imported) {
        (_, Imported::Died(why)) => return Err(format!("the process died: {why}")),
        (Outcome::Tree(tree), Imported::Commit(c)) => same_tree(tree, &repo, c)?,
        (Outcome::Tree(_), Imported::Refused(e)) => {
            return Err(format!("refused, but the contract imports it:\n{e}"))
        }
        (Outcome::Refused(ways, why), Imported::Commit(c)) => {
            return Err(format!(
                "imported as {c}, but the contract refuses it: {why} ({ways:?})"
            ))
        }
        (Outcome::Refused(ways, why), Imported::Refused(e)) => {
            if !ways.iter().any(|w| refusal_matches(w, archive, e)) {
                return Err(format!(
                    "wrong refusal; expected one of {ways:?} ({why}), got:\n{e}"
                ));
            }
        }
    }
    observe::fsck_clean(&repo)?;
    Ok(imported)
}

/// With `TAR_IMPORT_KEEP=DIR`, every archive imported is copied to DIR (numbered), to be
/// looked at with `tar -tvv` or committed with `ostree commit --tree=tar=`.
fn keep(archive: &Path) {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(dir) = std::env::var_os("TAR_IMPORT_KEEP") else {
        return;
    };
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = archive.file_name().unwrap_or_default().to_string_lossy();
    let to = Path::new(&dir).join(format!("{}-{n:04}-{name}", std::process::id()));
    std::fs::copy(archive, &to).unwrap_or_else(|e| panic!("keep {}: {e}", to.display()));
}

/// Whether the error's first line names the archive and says what `way` says.
fn refusal_matches(way: &Refusal, archive: &Path, error: &str) -> bool {
    let first = error.lines().next().unwrap_or_default();
    let said = match way {
        Refusal::Entry(raw) => renderings(raw).iter().any(|r| first.contains(r.as_str())),
        Refusal::Stream => {
            let first = first.to_lowercase();
            first.contains("truncated") || first.contains("corrupt")
        }
        Refusal::NotTar => first.contains("not a tar archive"),
    };
    said && first.contains(&archive.display().to_string())
}

/// The ways an error may print a path as written: as text (invalid bytes replaced), or
/// escaped (`\xff`, `\0`, `\u{0}`).
fn renderings(raw: &[u8]) -> Vec<String> {
    let lossy = String::from_utf8_lossy(raw).into_owned();
    let debug = format!("{lossy:?}");
    vec![
        lossy.clone(),
        raw.escape_ascii().to_string(),
        debug[1..debug.len() - 1].to_string(),
        lossy.replace('\0', "\\0"),
    ]
}

/// The committed tree (read with the ostree CLI) is the predicted one.
fn same_tree(tree: &Tree, repo: &Path, commit: &str) -> Result<(), String> {
    let seen = observe::read_tree(repo, commit)?;
    let mut problems = Vec::new();
    let root = seen.get("/").ok_or("no root in the listing")?;
    let root_meta = model::Meta::of(root.clone());
    if !tree.root_metas.contains(&root_meta) {
        let allowed: Vec<String> = tree.root_metas.iter().map(show_meta).collect();
        problems.push(format!(
            "/: {}, expected one of {allowed:?}",
            show_meta(&root_meta)
        ));
    }
    let paths = tree.nodes.keys().chain(seen.keys()).filter(|p| *p != "/");
    for path in paths.collect::<std::collections::BTreeSet<_>>() {
        let (want, got) = (tree.nodes.get(path), seen.get(path));
        if want != got {
            problems.push(format!(
                "{path}:\n  expected {}\n  committed {}",
                show(want),
                show(got)
            ));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "the commit differs from the contract:\n{}",
            problems.join("\n")
        )),
    }
}

fn show(node: Option<&Node>) -> String {
    let Some(n) = node else {
        return "nothing".into();
    };
    let kind = match &n.kind {
        NodeKind::Dir => "dir".to_string(),
        NodeKind::File(d) => format!("file {:?}", Text(d)),
        NodeKind::Symlink(t) => format!("symlink to {:?}", Text(t.as_bytes())),
    };
    format!(
        "{kind} {:o} {}:{} {}",
        n.mode,
        n.uid,
        n.gid,
        show_xattrs(&n.xattrs)
    )
}

fn show_meta(m: &model::Meta) -> String {
    format!(
        "{:o} {}:{} {}",
        m.mode,
        m.uid,
        m.gid,
        show_xattrs(&m.xattrs)
    )
}

fn show_xattrs(xattrs: &model::Xattrs) -> String {
    let shown: Vec<String> = xattrs
        .iter()
        .map(|(n, v)| format!("{:?}={:?}", Text(n), Text(v)))
        .collect();
    format!("xattrs [{}]", shown.join(", "))
}

/// The import gives the same root tree as `ostree commit --tree=tar=` (and the model's).
fn equals_ostree_commit(entries: &[Entry], compression: Compression) -> Result<(), String> {
    let dir = tempdir();
    let archive = write_file(dir.path(), &tar::write(entries).bytes, compression);
    let outcome = model::predict(entries, None);
    let Imported::Commit(ours) = check(dir.path(), &archive, &outcome)? else {
        return Err(format!(
            "the model refuses a well-formed archive: {outcome:?}"
        ));
    };
    let theirs = dir.path().join("ostree-repo");
    let r = format!("--repo={}", theirs.display());
    observe::ostree(&["init", &r, "--mode=bare-user"])?;
    let tree = format!("--tree=tar={}", archive.display());
    observe::ostree(&["commit", &r, &tree, "--tar-autocreate-parents", "-b", "x"])?;
    let ours = observe::root_line(&dir.path().join("repo"), &ours)?;
    let theirs = observe::root_line(&theirs, "x")?;
    match ours == theirs {
        true => Ok(()),
        false => Err(format!(
            "root trees differ:\n  ours:  {ours}\n  ostree: {theirs}"
        )),
    }
}

/// Imports `entries` (plain tar) and checks the result against the model; the result.
fn import_checked(entries: &[Entry], compression: Compression) -> Imported {
    let dir = tempdir();
    let archive = write_file(dir.path(), &tar::write(entries).bytes, compression);
    let outcome = model::predict(entries, None);
    check(dir.path(), &archive, &outcome).unwrap_or_else(|e| panic!("{e}\nentries: {entries:#?}"))
}

/// The model and the import both refuse `entries`, naming `entry`; the error.
fn assert_refused(entries: &[Entry], entry: &[u8]) -> String {
    let outcome = model::predict(entries, None);
    let named = Refusal::Entry(entry.to_vec());
    assert!(
        matches!(&outcome, Outcome::Refused(ways, _) if ways == &[named]),
        "the model does not refuse {:?}: {outcome:?}",
        String::from_utf8_lossy(entry)
    );
    match import_checked(entries, Compression::None) {
        Imported::Refused(e) => e,
        other => panic!("not refused: {other:?}"),
    }
}

fn assert_imports(entries: &[Entry]) {
    let outcome = model::predict(entries, None);
    assert!(
        matches!(outcome, Outcome::Tree(_)),
        "the model refuses: {outcome:?}"
    );
    assert!(matches!(
        import_checked(entries, Compression::None),
        Imported::Commit(_)
    ));
}

/// Imports raw archive bytes the model cannot describe; the error.
fn refused_bytes(bytes: &[u8], way: Refusal) -> String {
    let dir = tempdir();
    let archive = dir.path().join("archive.tar");
    std::fs::write(&archive, bytes).expect("write archive");
    let outcome = Outcome::Refused(vec![way], "raw bytes".into());
    match check(dir.path(), &archive, &outcome).unwrap_or_else(|e| panic!("{e}")) {
        Imported::Refused(e) => e,
        other => panic!("not refused: {other:?}"),
    }
}

// ---- One test per hostile class of the contract ----

#[test]
fn dotdot_component_is_refused_naming_it() {
    let bad = b"./usr/../../etc/passwd";
    let e = assert_refused(&[Entry::dir("./usr/"), Entry::file(bad, "x")], bad);
    assert!(e.lines().next().unwrap_or_default().contains("'..'"), "{e}");
}

#[test]
fn non_utf8_component_is_refused() {
    let bad = b"usr/lib/\xff\xfe.so";
    assert_refused(&[Entry::file(bad, "x")], bad);
}

#[test]
fn nul_in_a_pax_path_is_refused() {
    let bad = b"usr/bin/ls\0.evil";
    assert_refused(&[Entry::file(bad, "x").name_via(Via::Pax)], bad);
}

#[test]
fn component_over_255_bytes_is_refused() {
    let fine = [b"usr/".to_vec(), vec![b'n'; 255]].concat();
    let bad = [b"usr/".to_vec(), vec![b'n'; 256]].concat();
    let entries = [
        Entry::file(&fine, "ok").name_via(Via::Pax),
        Entry::file(&bad, "x"),
    ];
    assert_refused(&entries, &bad);
}

#[test]
fn path_over_4095_bytes_is_refused() {
    let bad = [b"./".repeat(10), b"dd/".repeat(1400), b"f".to_vec()].concat();
    assert_refused(&[Entry::file(&bad, "x").name_via(Via::Pax)], &bad);
}

#[test]
fn symlink_climbing_out_of_the_root_is_refused() {
    let entries = [
        Entry::symlink("usr/lib/ok", "../../etc"),
        Entry::symlink("usr/lib/bad", "../../../etc/shadow"),
    ];
    assert_refused(&entries, b"usr/lib/bad");
}

#[test]
fn symlink_target_of_4096_bytes_is_refused() {
    let fine = [b"t/".repeat(2047), b"t".to_vec()].concat();
    let bad = [b"t/".repeat(2048), b"t".to_vec()].concat();
    let entries = [
        Entry::symlink("ok", fine).link_via(Via::Pax),
        Entry::symlink("bad", bad).link_via(Via::Gnu),
    ];
    assert_refused(&entries, b"bad");
}

#[test]
fn empty_nul_or_non_utf8_symlink_target_is_refused() {
    for target in [&b""[..], b"a\0b", b"\xffx"] {
        assert_refused(
            &[Entry::symlink("link", target).link_via(Via::Pax)],
            b"link",
        );
    }
}

#[test]
fn hardlink_to_nothing_earlier_a_directory_or_with_dotdot_is_refused() {
    let cases: [(&[u8], Vec<Entry>); 4] = [
        (b"missing", vec![]),
        (b"later", vec![]),
        (b"dir", vec![Entry::dir("dir/")]),
        (b"dir/../f", vec![Entry::dir("dir"), Entry::file("f", "x")]),
    ];
    for (target, mut entries) in cases {
        entries.push(Entry::hardlink("link", target));
        entries.push(Entry::file("later", "x"));
        assert_refused(&entries, b"link");
    }
}

#[test]
fn device_nodes_and_fifos_are_refused_with_a_help_line() {
    for flag in [b'3', b'4', b'6'] {
        let e = assert_refused(&[Entry::new("dev/node", Kind::Special(flag))], b"dev/node");
        assert!(
            e.lines().skip(1).any(|l| l.contains("help:")),
            "no help line: {e}"
        );
    }
}

#[test]
fn unknown_entry_types_are_refused() {
    for flag in *b"VMNDZ9" {
        assert_refused(&[Entry::new("odd", Kind::Special(flag))], b"odd");
    }
}

#[test]
fn pax_gnu_sparse_keys_are_refused() {
    for style in 0..3 {
        let mut e = Entry::file("sparse", vec![0u8; 10]);
        e.extra = gen::sparse_keys(style, b"sparse");
        assert_refused(&[e], b"sparse");
    }
}

#[test]
fn entry_below_a_file_or_symlink_is_refused() {
    let below_link = [
        Entry::symlink("usr/lib/x", "/etc"),
        Entry::file("usr/lib/x/passwd", "x"),
    ];
    assert_refused(&below_link, b"usr/lib/x/passwd");
    let below_file = [Entry::file("./a", "x"), Entry::dir("./a/b/")];
    assert_refused(&below_file, b"./a/b/");
}

#[test]
fn directory_over_file_and_file_over_directory_are_refused() {
    assert_refused(&[Entry::file("a", "x"), Entry::dir("a/")], b"a/");
    assert_refused(&[Entry::dir("a/"), Entry::symlink("./a", "b")], b"./a");
    assert_refused(
        &[
            Entry::file("f", "x"),
            Entry::dir("d/"),
            Entry::hardlink("d", "f"),
        ],
        b"d",
    );
}

#[test]
fn non_directory_root_is_refused() {
    assert_refused(&[Entry::file("./", "x")], b"./");
    assert_refused(&[Entry::symlink("/", "etc")], b"/");
}

#[test]
fn owner_above_2_pow_32_minus_2_is_refused() {
    let fine = Entry::file("fine", "x").owner(MAX_ID, MAX_ID);
    assert_refused(
        &[
            fine.clone(),
            Entry::file("u", "x").owner(MAX_ID + 1, 0).ids_via(Via::Pax),
        ],
        b"u",
    );
    assert_refused(
        &[fine, Entry::dir("g").owner(0, 1 << 40).ids_via(Via::Gnu)],
        b"g",
    );
}

#[test]
fn empty_or_nul_xattr_name_is_refused() {
    assert_refused(&[Entry::file("e", "x").xattr("", "v", XKey::Schily)], b"e");
    let nul = Entry::file("n", "x").xattr("user.a\0b", "v", XKey::Libarchive { pad: false });
    assert_refused(&[nul], b"n");
}

#[test]
fn truncated_or_corrupt_stream_is_refused() {
    let w = tar::write(&[Entry::file("a", vec![7u8; 2000]), Entry::file("b", "x")]);
    let in_header = &w.bytes[..w.spans[1].main + 300];
    let in_data = &w.bytes[..w.spans[0].data_start + 600];
    refused_bytes(in_header, Refusal::Stream);
    refused_bytes(in_data, Refusal::Stream);
    let mut bad_sum = w.bytes.clone();
    tar::corrupt_checksum(&mut bad_sum, w.spans[1].main);
    refused_bytes(&bad_sum, Refusal::Stream);
    let gz = tar::compress(&w.bytes, Compression::Gzip);
    let dir = tempdir();
    let archive = dir.path().join("cut.tar.gz");
    std::fs::write(&archive, &gz[..gz.len() / 3]).expect("write");
    let outcome = Outcome::Refused(vec![Refusal::Stream], "cut gzip".into());
    check(dir.path(), &archive, &outcome).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn not_a_tar_archive_is_refused() {
    refused_bytes(b"", Refusal::NotTar);
    refused_bytes(
        &b"PK\x03\x04 a zip file, or anything else\n".repeat(40),
        Refusal::NotTar,
    );
    let gz = tar::compress(&b"just some text\n".repeat(100), Compression::Gzip);
    let e = refused_bytes_any(&gz);
    assert!(
        e.contains("not a tar archive") || e.contains("corrupt"),
        "{e}"
    );
}

/// Refused in any way that names the archive (the right word is asserted by the caller).
fn refused_bytes_any(bytes: &[u8]) -> String {
    let dir = tempdir();
    let archive = dir.path().join("archive.tar.gz");
    std::fs::write(&archive, bytes).expect("write archive");
    let ways = vec![Refusal::NotTar, Refusal::Stream];
    let outcome = Outcome::Refused(ways, "compressed text".into());
    match check(dir.path(), &archive, &outcome).unwrap_or_else(|e| panic!("{e}")) {
        Imported::Refused(e) => e,
        other => panic!("not refused: {other:?}"),
    }
}

// ---- What must import ----

#[test]
fn an_archive_of_only_end_blocks_is_an_empty_root() {
    assert_imports(&[]);
}

#[test]
fn global_headers_and_ignored_pax_keys_change_nothing() {
    let mut e = Entry::file("etc/motd", "hi")
        .pax("SCHILY.acl.access", "user::rwx")
        .pax("comment", "x");
    e.global = [
        ("path", "../../evil"),
        ("uid", "99999999999"),
        ("SCHILY.xattr.user.g", "x"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    assert_imports(&[Entry::dir("./"), e]);
}

#[test]
fn last_entry_wins_and_hardlinks_take_their_target_at_that_moment() {
    assert_imports(&[
        Entry::dir("d")
            .owner(5, 5)
            .xattr("user.a", "1", XKey::Schily),
        Entry::file("d/f", "first").mode(0o600),
        Entry::hardlink("d/link", "./d/f"),
        Entry::file("/d/f", "second").owner(7, 7),
        Entry::dir("d/").mode(0o700),
        Entry::symlink("d/f", "elsewhere"),
        Entry::hardlink("d/slink", "d/f"),
    ]);
}

#[test]
fn missing_parents_take_the_owner_of_the_entry_that_needed_them() {
    assert_imports(&[
        Entry::dir("./").owner(0, 0),
        Entry::file("a/b/c/f", "x").owner(1000, 100).mode(0o640),
        Entry::file("a/b/g", "y").owner(2000, 200),
        Entry::dir("a/").owner(3000, 300).mode(0o750),
    ]);
}

#[test]
fn names_links_and_owners_in_every_spelling_import() {
    let long = "l/".repeat(80) + "name";
    let mut entries = vec![Entry::dir("./")];
    for (i, via) in [Via::Header, Via::Gnu, Via::Pax].into_iter().enumerate() {
        let file = format!("{i}/{long}");
        entries.push(
            Entry::file(&file, "x")
                .name_via(via)
                .ids_via(via)
                .owner(2_097_152, 7),
        );
        entries.push(Entry::symlink(format!("{i}/s"), format!("/{long}")).link_via(via));
        entries.push(Entry::hardlink(format!("{i}/h"), file).link_via(via));
        entries.push(Entry::file(format!("./{i}/flag/{i}"), "y").mode(0o4755));
    }
    entries.push(Entry::new(
        "t7",
        Kind::File {
            flag: b'7',
            data: b"contiguous".to_vec(),
        },
    ));
    entries.push(Entry::new(
        "t0",
        Kind::File {
            flag: 0,
            data: b"old".to_vec(),
        },
    ));
    entries.push(Entry::symlink("max", "a/".repeat(2047) + "a"));
    assert_imports(&entries);
}

#[test]
fn gnu_sparse_files_are_expanded() {
    let chunks: Vec<(u64, Vec<u8>)> = (0..6)
        .map(|i| (i * 2048 + 512, vec![b'a' + i as u8; 1024]))
        .collect();
    let sparse = Entry::new(
        "sparse",
        Kind::Sparse {
            size: 14336,
            chunks,
        },
    );
    let empty = Entry::new(
        "holes",
        Kind::Sparse {
            size: 4096,
            chunks: Vec::new(),
        },
    );
    assert_imports(&[sparse, empty]);
}

#[test]
fn xattrs_are_sorted_on_files_and_reversed_on_directories_as_ostree_does() {
    let xattrs = |e: Entry| {
        e.xattr("user.z", "1", XKey::Schily)
            .xattr(
                "security.selinux",
                "system_u:object_r:etc_t:s0\0",
                XKey::Rht,
            )
            .xattr("user.a", [0u8, 0xff, b'\''], XKey::Libarchive { pad: true })
            .xattr("user.%=é", "", XKey::Libarchive { pad: false })
    };
    let last_wins = Entry::file("f2", "x")
        .xattr("user.k", "old", XKey::Schily)
        .xattr("user.k", "new", XKey::Libarchive { pad: true });
    assert_imports(&[
        xattrs(Entry::dir("d")),
        xattrs(Entry::file("f", "x")),
        last_wins,
    ]);
}

#[test]
fn pax_records_are_read_by_length_not_by_line() {
    // Values may hold newlines (a capability blob, an ACL); the records after them count.
    let cap = b"\x01\x00\x00\x02\x0a\x00\x00\x00\n\n";
    let file = Entry::file("usr/bin/ping", "x").xattr("security.capability", cap, XKey::Schily);
    let link = Entry::hardlink("usr/bin/ping6", "usr/bin/ping")
        .link_via(Via::Pax)
        .pax("SCHILY.acl.access", "user::rwx\ngroup::r-x\nother::r-x\n");
    assert_imports(&[file.name_via(Via::Pax), link.name_via(Via::Pax)]);
}

#[test]
fn every_compression_imports() {
    let entries = [
        Entry::dir("./"),
        Entry::file("./etc/os-release", "ID=test\n"),
    ];
    for c in [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Zstd,
    ] {
        assert!(
            matches!(import_checked(&entries, c), Imported::Commit(_)),
            "{c:?}"
        );
    }
}

// ---- Equivalence with libostree ----

/// What an OpenEmbedded image archive holds: SELinux labels and capabilities, setuid,
/// hardlinks, service accounts' files, symlinks, `./`-prefixed paths.
fn openembedded() -> Vec<Entry> {
    let label = |t: &str| format!("system_u:object_r:{t}:s0\0");
    let cap = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    vec![
        Entry::dir("./").xattr("security.selinux", label("root_t"), XKey::Schily),
        Entry::dir("./usr/").xattr("security.selinux", label("usr_t"), XKey::Schily),
        Entry::dir("./usr/bin/").xattr("security.selinux", label("bin_t"), XKey::Schily),
        // Reverse-sorted: libarchive hands libostree the xattrs in reverse archive order.
        Entry::file("./usr/bin/ping", b"\x7fELF ping")
            .mode(0o755)
            .xattr("security.selinux", label("ping_exec_t"), XKey::Schily)
            .xattr("security.capability", cap, XKey::Schily),
        Entry::file("./usr/bin/su", b"\x7fELF su").mode(0o4755),
        Entry::file("./usr/bin/busybox", b"\x7fELF busybox").mode(0o755),
        Entry::hardlink("./usr/bin/sh", "./usr/bin/busybox"),
        Entry::symlink("./usr/bin/ls", "busybox"),
        Entry::symlink("./bin", "usr/bin"),
        Entry::dir("./etc/").mode(0o755),
        Entry::file("./etc/shadow", "root:*:1::::::\n").mode(0o400),
        Entry::dir("./var/").mode(0o755),
        Entry::dir("./var/lib/").mode(0o755),
        Entry::dir("./var/lib/app/").owner(999, 998).mode(0o750),
        Entry::file("./var/lib/app/state", "s\n")
            .owner(999, 998)
            .mode(0o640),
    ]
}

#[test]
fn openembedded_archive_equals_ostree_commit() {
    for compression in [Compression::None, Compression::Zstd] {
        equals_ostree_commit(&openembedded(), compression).unwrap_or_else(|e| panic!("{e}"));
    }
}
