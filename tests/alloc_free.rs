//! Proves that the query answer path does not touch the heap: after one warm-up per query
//! kind, 10 000 calls of [`answer`] per kind perform zero allocations and zero frees.
//!
//! This test has its own binary (see `Cargo.toml`) because it installs a counting global
//! allocator. The allocator wraps [`System`] and counts only on a thread whose thread-local
//! flag is armed, so the test harness's own threads never disturb the count. Every reply is
//! also checked (rcode, disposition, section counts, TC) and decoded with hickory-proto, so
//! the loop provably exercises the path it names. The snapshot comes from the deterministic
//! 1 000-task synthetic state of `loadtest/synth_state.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use mesos_dns::config::Config;
use mesos_dns::dns::answer::{AnswerConfig, Disposition, Outcome, Scratch, Transport, answer};
use mesos_dns::dns::wire::{self, ParseError, rcode, rtype};
use mesos_dns::mesos::state::State;
use mesos_dns::records::generator::{GenConfig, NoHosts, generate};
use mesos_dns::snapshot::{Snapshot, Zone};

#[path = "../loadtest/synth_state.rs"]
mod synth_state;

// ---------------------------------------------------------------------------------------------
// The counting allocator
// ---------------------------------------------------------------------------------------------

struct Counting;

thread_local! {
    /// Whether heap calls on this thread are counted. Const-initialised and without a
    /// destructor, so reading it from inside the allocator never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

/// `alloc`, `alloc_zeroed` and `realloc` calls made on an armed thread.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// `dealloc` calls made on an armed thread.
static FREES: AtomicU64 = AtomicU64::new(0);

fn armed() -> bool {
    ARMED.try_with(Cell::get).unwrap_or(false)
}

fn count(counter: &AtomicU64) {
    if armed() {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCS);
        // SAFETY: the caller's contract is passed through unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(&ALLOCS);
        // SAFETY: the caller's contract is passed through unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(&FREES);
        // SAFETY: the caller's contract is passed through unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(&ALLOCS);
        // SAFETY: the caller's contract is passed through unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with counting armed on this thread; returns (allocations, frees) during `f`.
fn counted(f: impl FnOnce()) -> (u64, u64) {
    let a0 = ALLOCS.load(Ordering::SeqCst);
    let f0 = FREES.load(Ordering::SeqCst);
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    (
        ALLOCS.load(Ordering::SeqCst) - a0,
        FREES.load(Ordering::SeqCst) - f0,
    )
}

// ---------------------------------------------------------------------------------------------
// Snapshot and queries
// ---------------------------------------------------------------------------------------------

fn build_snapshot() -> Snapshot {
    let doc = synth_state::generate(&synth_state::SynthSpec::with_tasks(1_000));
    let state = State::from_slice(doc.as_bytes()).expect("synthetic state parses");
    let cfg = GenConfig::defaults_with_listener(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let generated = generate(&state, &cfg, &[], &NoHosts);
    // ptrOn, so the reverse (PTR) path is covered too.
    let zone = Zone::from_config(&Config {
        ptr_on: true,
        ..Config::default()
    });
    Snapshot::new(generated, zone, state.leader.as_str().to_owned(), None)
}

/// Header fields of a query packet.
#[derive(Clone, Copy)]
struct Hdr {
    flags: u16,
    qdcount: u16,
}

const QUERY: Hdr = Hdr {
    flags: 0x0100,
    qdcount: 1,
};

/// Hand-encodes a query; `edns` is `(udp size, version)` for an OPT record.
fn encode(h: Hdr, name: &str, qtype: u16, edns: Option<(u16, u8)>) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&0x4242u16.to_be_bytes());
    p.extend_from_slice(&h.flags.to_be_bytes());
    p.extend_from_slice(&h.qdcount.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        p.push(u8::try_from(label.len()).expect("label fits"));
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    if let Some((size, version)) = edns {
        p.extend_from_slice(&[0, 0, 41]);
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&[0, version, 0, 0, 0, 0]);
    }
    p
}

/// What a reply must look like.
#[derive(Clone, Copy)]
struct Expect {
    /// `None`: no reply is sent (len 0).
    rcode: Option<u8>,
    disposition: Disposition,
    /// Exact answer count (ignored when there is no reply).
    answers: u16,
    /// Minimum additional count (OPT included).
    min_additionals: u16,
    truncated: bool,
}

impl Expect {
    fn ok(answers: u16, min_additionals: u16) -> Expect {
        Expect {
            rcode: Some(rcode::NOERROR),
            disposition: Disposition::Authoritative,
            answers,
            min_additionals,
            truncated: false,
        }
    }

    fn rcode(rc: u8, disposition: Disposition) -> Expect {
        Expect {
            rcode: Some(rc),
            disposition,
            answers: 0,
            min_additionals: 0,
            truncated: false,
        }
    }

    fn dropped(e: ParseError) -> Expect {
        Expect {
            rcode: None,
            disposition: Disposition::Malformed(e),
            answers: 0,
            min_additionals: 0,
            truncated: false,
        }
    }
}

struct Case {
    label: &'static str,
    pkt: Vec<u8>,
    transport: Transport,
    with_snapshot: bool,
    forward: bool,
    expect: Expect,
}

fn case(label: &'static str, pkt: Vec<u8>, expect: Expect) -> Case {
    Case {
        label,
        pkt,
        transport: Transport::Udp,
        with_snapshot: true,
        forward: false,
        expect,
    }
}

/// Names picked from the generated zone.
struct Names {
    a: String,
    aaaa: String,
    srv: String,
    big_srv: String,
    /// A reverse name with a PTR record.
    ptr: String,
}

fn pick_names(snap: &Snapshot) -> Names {
    let find = |pred: &dyn Fn(&str, &mesos_dns::records::generator::RrSet) -> bool| {
        snap.records
            .iter()
            .find(|(n, rr)| pred(n, rr))
            .map(|(n, _)| n.to_owned())
            .expect("a matching name in the synthetic zone")
    };
    let targets_have_a = |rr: &mesos_dns::records::generator::RrSet| {
        rr.srv.iter().all(|s| {
            snap.records
                .rrset(s.target)
                .is_some_and(|t| !t.a.is_empty())
        })
    };
    let a = find(&|n, rr| {
        n.ends_with(".marathon.mesos.")
            && rr.a.len() == 1
            && rr.aaaa.is_empty()
            && rr.srv.is_empty()
    });
    let aaaa = find(&|_, rr| rr.aaaa.len() == 1 && rr.a.is_empty() && rr.srv.is_empty());
    let srv = find(&|n, rr| {
        n.ends_with("._tcp.marathon.mesos.") && rr.srv.len() == 2 && targets_have_a(rr)
    });
    let most = snap
        .records
        .iter()
        .map(|(_, rr)| rr.srv.len())
        .max()
        .unwrap_or(0);
    let big_srv = find(&|_, rr| rr.srv.len() == most);
    assert!(most >= 20, "the zone needs a large SRV set, has {most}");
    let ptr = snap
        .reverse
        .iter()
        .map(|(n, _)| n.to_owned())
        .min()
        .expect("a PTR record in the synthetic zone");
    Names {
        a,
        aaaa,
        srv,
        big_srv,
        ptr,
    }
}

fn cases(n: &Names) -> Vec<Case> {
    use rtype::{A, AAAA, ANY, MX, NS, PTR, SOA, SRV};
    let formerr = |e| Expect::rcode(rcode::FORMERR, Disposition::Malformed(e));
    let mut v = vec![
        case("A hit", encode(QUERY, &n.a, A, None), Expect::ok(1, 0)),
        case(
            "A hit, mixed case, EDNS",
            encode(QUERY, &n.a.to_uppercase(), A, Some((4096, 0))),
            Expect::ok(1, 1),
        ),
        case(
            "A hit through .* stripping",
            encode(QUERY, &n.a.replacen('.', ".*.", 1), A, None),
            Expect::ok(1, 0),
        ),
        case(
            "AAAA hit",
            encode(QUERY, &n.aaaa, AAAA, None),
            Expect::ok(1, 0),
        ),
        case(
            "SRV hit with glue",
            encode(QUERY, &n.srv, SRV, Some((1232, 0))),
            Expect::ok(2, 2),
        ),
        case(
            "PTR hit",
            encode(QUERY, &n.ptr, PTR, None),
            Expect::ok(1, 0),
        ),
        case(
            "NODATA for a reverse name we own (A)",
            encode(QUERY, &n.ptr, A, Some((1232, 0))),
            Expect::rcode(rcode::NOERROR, Disposition::Authoritative),
        ),
        case(
            "NXDOMAIN",
            encode(QUERY, "no-such-task.marathon.mesos.", A, None),
            Expect::rcode(rcode::NXDOMAIN, Disposition::Authoritative),
        ),
        case(
            "NODATA (AAAA of an A-only name)",
            encode(QUERY, &n.a, AAAA, None),
            Expect::rcode(rcode::NOERROR, Disposition::Authoritative),
        ),
        case(
            "NODATA (MX)",
            encode(QUERY, &n.a, MX, None),
            Expect::rcode(rcode::NOERROR, Disposition::Authoritative),
        ),
        case(
            "ANY of an A name",
            encode(QUERY, &n.a, ANY, None),
            Expect::ok(1, 0),
        ),
        case(
            "ANY of an SRV name",
            encode(QUERY, &n.srv, ANY, Some((1232, 0))),
            Expect::ok(2, 2),
        ),
        case(
            "SOA at the apex",
            encode(QUERY, "mesos.", SOA, None),
            Expect::ok(0, 0),
        ),
        case(
            "NS at the apex",
            encode(QUERY, "mesos.", NS, None),
            Expect::ok(0, 0),
        ),
        case(
            "truncated reply (large SRV set, UDP, no EDNS)",
            encode(QUERY, &n.big_srv, SRV, None),
            Expect {
                answers: 0, // checked as "fewer than the full set" below
                truncated: true,
                ..Expect::ok(0, 0)
            },
        ),
        Case {
            transport: Transport::Tcp,
            ..case(
                "large SRV set over TCP",
                encode(QUERY, &n.big_srv, SRV, None),
                Expect::ok(0, 1),
            )
        },
        case(
            "REFUSED (outside the domain)",
            encode(QUERY, "example.com.", A, None),
            Expect::rcode(rcode::REFUSED, Disposition::Refused),
        ),
        Case {
            forward: true,
            ..case(
                "outside the domain, for the forwarder",
                encode(QUERY, "example.com.", A, None),
                Expect {
                    rcode: None,
                    ..Expect::rcode(rcode::NOERROR, Disposition::Forward)
                },
            )
        },
        Case {
            with_snapshot: false,
            ..case(
                "SERVFAIL (no snapshot yet)",
                encode(QUERY, &n.a, A, None),
                Expect::rcode(rcode::SERVFAIL, Disposition::NotReady),
            )
        },
        case(
            "BADVERS (EDNS version 1)",
            encode(QUERY, &n.a, A, Some((1232, 1))),
            Expect {
                min_additionals: 1,
                ..Expect::rcode(rcode::BADVERS, Disposition::BadVersion)
            },
        ),
        // Malformed packets.
        case(
            "malformed: shorter than a header",
            vec![0x12, 0x34, 0x01],
            Expect::dropped(ParseError::TooShort),
        ),
        case(
            "malformed: a response",
            encode(
                Hdr {
                    flags: 0x8100,
                    qdcount: 1,
                },
                &n.a,
                A,
                None,
            ),
            Expect::dropped(ParseError::Response),
        ),
        case(
            "malformed: opcode STATUS",
            encode(
                Hdr {
                    flags: 0x1100,
                    qdcount: 1,
                },
                &n.a,
                A,
                None,
            ),
            Expect::rcode(rcode::NOTIMP, Disposition::Malformed(ParseError::Opcode)),
        ),
        case(
            "malformed: QDCOUNT 2",
            encode(
                Hdr {
                    flags: 0x0100,
                    qdcount: 2,
                },
                &n.a,
                A,
                None,
            ),
            formerr(ParseError::QdCount),
        ),
        {
            let mut p = encode(QUERY, &n.a, A, None);
            p.truncate(p.len() - 3);
            case(
                "malformed: question cut short",
                p,
                formerr(ParseError::Truncated),
            )
        },
        {
            let mut p = encode(QUERY, "x.mesos.", A, None);
            // Replace the label "mesos" by a pointer to offset 12.
            p.truncate(14);
            p.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
            case(
                "malformed: pointer in the question",
                p,
                formerr(ParseError::QnamePointer),
            )
        },
        {
            let mut p = encode(QUERY, &n.a, A, Some((1232, 0)));
            // An OPT RDLENGTH that runs past the end.
            let len = p.len();
            p[len - 1] = 9;
            case("malformed: bad OPT RDATA", p, formerr(ParseError::OptRdata))
        },
    ];
    // Labels over 63 bytes.
    let mut p = encode(QUERY, "a.mesos.", A, None);
    p[12] = 0x41;
    v.push(case(
        "malformed: label type 0x40",
        p,
        formerr(ParseError::BadLabel),
    ));
    v
}

/// Checks one reply against its expectation; returns a description of every mismatch.
fn check(c: &Case, o: &Outcome, reply: &[u8], big_srv_len: usize) -> Result<(), String> {
    let e = &c.expect;
    let mut errs = Vec::new();
    if o.disposition != e.disposition {
        errs.push(format!(
            "disposition {:?}, want {:?}",
            o.disposition, e.disposition
        ));
    }
    if o.truncated != e.truncated {
        errs.push(format!("truncated {}, want {}", o.truncated, e.truncated));
    }
    match e.rcode {
        None if o.len != 0 => errs.push(format!("a {}-byte reply, want none", o.len)),
        None => {}
        Some(rc) => {
            if o.len < wire::HEADER_LEN {
                errs.push(format!("reply of {} bytes", o.len));
                return Err(errs.join("; "));
            }
            let be = |i: usize| u16::from_be_bytes([reply[i], reply[i + 1]]);
            let rc_bits = (be(2) & 0x000F) as u8;
            if o.rcode != rc || rc_bits != rc & 0x0F {
                errs.push(format!("rcode {} (header {rc_bits}), want {rc}", o.rcode));
            }
            let tc = be(2) & 0x0200 != 0;
            if tc != e.truncated {
                errs.push(format!("TC bit {tc}, want {}", e.truncated));
            }
            let (an, ar) = (be(6), be(10));
            let big = c.expect.truncated || c.transport == Transport::Tcp;
            if big {
                let full = big_srv_len as u16;
                let want_full = c.transport == Transport::Tcp;
                if (an == full) != want_full || an == 0 {
                    errs.push(format!("{an} answers of {full}"));
                }
            } else if an != e.answers {
                errs.push(format!("{an} answers, want {}", e.answers));
            }
            if ar < e.min_additionals {
                errs.push(format!("{ar} additionals, want >= {}", e.min_additionals));
            }
            match hickory_proto::op::Message::from_vec(reply) {
                Ok(m) if m.answers.len() == usize::from(an) => {}
                Ok(m) => errs.push(format!("hickory sees {} answers", m.answers.len())),
                Err(err) => errs.push(format!("hickory cannot decode the reply: {err}")),
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

const CALLS: usize = 10_000;

#[test]
fn answer_path_never_allocates() {
    let snap = build_snapshot();
    let names = pick_names(&snap);
    let big_srv_len = snap.lookup(&names.big_srv).map_or(0, |rr| rr.srv.len());
    let all = cases(&names);
    let mut out = vec![0u8; wire::MAX_MESSAGE_LEN];
    let mut scratch = Scratch::new(0x1234_5678_9ABC_DEF1);
    let mut failures = Vec::new();

    for c in &all {
        let cfg = AnswerConfig {
            domain: "mesos".into(),
            edns_udp_size: 1232,
            recurse_on: true,
            forward: c.forward,
        };
        let snap_ref = c.with_snapshot.then_some(&snap);
        // Warm-up: lets the scratch grow to what this kind needs.
        for _ in 0..3 {
            answer(&c.pkt, c.transport, snap_ref, &cfg, &mut out, &mut scratch);
        }
        // The size of a reply to a large SRV set depends on the shuffled order (truncation
        // point, compression table slots); every other reply has a fixed size.
        let fixed_size = !(c.expect.truncated || c.transport == Transport::Tcp);
        let mut last = None;
        let mut lens_differ = false;
        let (allocs, frees) = counted(|| {
            for _ in 0..CALLS {
                let o = answer(&c.pkt, c.transport, snap_ref, &cfg, &mut out, &mut scratch);
                if fixed_size && last.is_some_and(|l: Outcome| l.len != o.len) {
                    lens_differ = true;
                }
                last = Some(o);
            }
        });
        if allocs != 0 || frees != 0 {
            failures.push(format!(
                "{}: {allocs} allocations and {frees} frees in {CALLS} calls",
                c.label
            ));
        }
        if lens_differ {
            failures.push(format!("{}: reply length changed between calls", c.label));
        }
        let o = last.expect("at least one call");
        if let Err(e) = check(c, &o, out.get(..o.len).unwrap_or(&[]), big_srv_len) {
            failures.push(format!("{}: wrong reply: {e}", c.label));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} query kinds failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// The allocator really counts: a `Vec` allocation on an armed thread is seen.
#[test]
fn counter_sees_allocations() {
    let (allocs, frees) = counted(|| {
        let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
        drop(std::hint::black_box(v));
    });
    assert_eq!((allocs, frees), (1, 1));
}
