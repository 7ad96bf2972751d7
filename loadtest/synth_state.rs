//! Deterministic synthetic Mesos `/master/state` documents for benches and load tests.
//!
//! [`generate`] writes a compact JSON document shaped like a real Mesos 1.x master's
//! `/master/state` reply. Every choice comes from a small SplitMix64 generator seeded with
//! [`SynthSpec::seed`], so the same spec always gives byte-identical output. The document
//! exercises every input case the record generator handles: framework names that need
//! sanitising, frameworks with and without a `pid` (IPv4 and IPv6), IPv4 and IPv6 agents,
//! repeated task names (apps with several instances), non-running tasks, every task IP source
//! (`network_infos` in both the Mesos 0.26+ and 0.25 formats, Docker and Mesos containerizer
//! labels, none), several `TASK_RUNNING` statuses in any order, `healthy` flags, DiscoveryInfo
//! with dotted, uppercase and empty names and tcp/udp/empty protocols, and empty, `[]` and
//! absent port lists. Fields the generator never reads (resources, labels, container blocks,
//! completed tasks, flags) are filled in so that sizes are close to a real master
//! (about 2.5 KB per task).
//!
//! The module uses only `std` so it can be included with `#[path]` from the generator binary
//! and from benches. The output is built with `push_str` into one pre-sized `String`; a
//! 100 000-task document takes a fraction of a second in release builds.

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SynthSpec {
    /// Number of tasks in `frameworks[].tasks` (completed tasks are extra and not counted).
    pub(crate) tasks: usize,
    /// Number of frameworks (at least 1 is generated).
    pub(crate) frameworks: usize,
    /// Number of agents in `slaves[]` (at least 1 is generated).
    pub(crate) agents: usize,
    /// PRNG seed; the output is a pure function of the whole spec.
    pub(crate) seed: u64,
    /// When > 0, every `kill_every`-th task is shown as `TASK_KILLED` while every random
    /// choice stays the same: a state that differs from the `0` one only by those tasks losing
    /// their records (what a load test swaps in to make each refresh really change the zone).
    pub(crate) kill_every: usize,
}

impl SynthSpec {
    /// A spec for `tasks` tasks with realistic ratios: one framework per 200 tasks and one
    /// agent per 20 tasks (each at least 1), and a fixed default seed.
    pub(crate) fn with_tasks(tasks: usize) -> Self {
        SynthSpec {
            tasks,
            frameworks: (tasks / 200).max(1),
            agents: (tasks / 20).max(1),
            seed: 0x5EED_5EED_5EED_5EED,
            kill_every: 0,
        }
    }
}

/// Generates the `/master/state` JSON document described by `spec`.
pub(crate) fn generate(spec: &SynthSpec) -> String {
    let frameworks = spec.frameworks.max(1);
    let agents = spec.agents.max(1);
    let mut g = Gen {
        out: String::with_capacity(4096 + agents * 1200 + frameworks * 6000 + spec.tasks * 2700),
        rng: Rng::new(spec.seed),
        agents,
        task_serial: 0,
        kill_every: spec.kill_every,
    };
    g.document(spec.tasks, frameworks);
    g.out
}

/// SplitMix64: tiny, fast, and good enough for picking synthetic data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x6A09_E667_F3BC_C909)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const CLUSTER_ID: &str = "20140803-125133-3041283216-5050-2410";
const LEADER: &str = "master@127.0.0.1:5050";
const BASE_TIME: u64 = 1_700_000_000;

const APP_WORDS: &[&str] = &[
    "web", "api", "auth", "billing", "search", "cache", "db", "queue", "worker", "frontend",
    "backend", "metrics", "log", "payments", "gateway", "proxy", "etl", "ml", "notify", "report",
];
const APP_KINDS: &[&str] = &[
    "server",
    "service",
    "worker",
    "proxy",
    "store",
    "sync",
    "indexer",
    "consumer",
    "producer",
    "scheduler",
];
/// A realistic-looking (fixed) base64 label value, as DC/OS packages attach to tasks.
const PACKAGE_OPTIONS: &str = "eyJzZXJ2aWNlIjp7Im5hbWUiOiJzeW50aCIsInVzZXIiOiJub2JvZHkiLCJwbGFjZW1lbnRfY29uc3RyYWludCI6Imhvc3RuYW1lOlVOSVFVRSIsInNlcnZpY2VfYWNjb3VudCI6IiIsInNlY3JldF9uYW1lIjoiIn0sImJyb2tlcnMiOnsiY291bnQiOjMsImNwdXMiOjEsIm1lbSI6MjA0OCwiZGlzayI6NTAwMCwiZGlza190eXBlIjoiUk9PVCJ9fQ==";
const PORT_NAMES: &[&str] = &["http", "https", "admin", "metrics", "grpc", ""];
const PROTOCOLS: &[&str] = &["tcp", "tcp", "tcp", "udp", ""];

/// Where a task's IPs come from (decided per app, so all instances agree).
#[derive(Clone, Copy, PartialEq, Eq)]
enum IpSource {
    /// No container IP anywhere: the agent's IP is used.
    Host,
    /// `network_infos[].ip_addresses[]` (Mesos >= 0.26); `v6` adds an IPv6 address.
    NetInfo { v6: bool },
    /// `network_infos[].ip_address` (Mesos 0.25 format).
    NetInfoLegacy,
    /// `Docker.NetworkSettings.IPAddress` status label.
    Docker,
    /// `MesosContainerizer.NetworkSettings.IPAddress` status label.
    Mesos,
}

/// How a Marathon-like app looks; every instance (task) of the app shares it.
struct App {
    name: String,
    remaining: u64,
    source: IpSource,
    /// 0: no ports key, 1: `""`, 2: `"[]"`, otherwise 1..=3 ranges.
    port_ranges: u64,
    /// DiscoveryInfo: `None` = absent, `Some("")` = present without a name.
    discovery: Option<String>,
    docker: bool,
    image_version: u64,
}

struct Gen {
    out: String,
    rng: Rng,
    agents: usize,
    /// Global counter of every task written (running and completed), for unique IPs.
    task_serial: u64,
    kill_every: usize,
}

impl Gen {
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn num(&mut self, mut n: u64) {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &b in &buf[i..] {
            self.out.push(char::from(b));
        }
    }

    /// `n` lowercase hex digits of `v` (most significant first).
    fn hex(&mut self, v: u64, digits: u32) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for k in (0..digits).rev() {
            self.out
                .push(char::from(HEX[((v >> (k * 4)) & 0xF) as usize]));
        }
    }

    /// Minimal hex for IPv6 groups.
    fn hex_min(&mut self, v: u64) {
        let digits = if v == 0 {
            1
        } else {
            (64 - v.leading_zeros()).div_ceil(4)
        };
        self.hex(v, digits);
    }

    /// A JSON string literal (escapes quotes, backslashes and control characters).
    fn str_lit(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    self.out.push_str("\\u00");
                    self.hex(u64::from(c as u32), 2);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    /// A float timestamp `secs.micros` (always six fraction digits, like Mesos).
    fn ts(&mut self, secs: u64, micros: u64) {
        self.num(secs);
        self.out.push('.');
        let m = micros % 1_000_000;
        let mut div = 100_000;
        while div > 0 {
            self.out.push(char::from(b'0' + ((m / div) % 10) as u8));
            div /= 10;
        }
    }

    /// A timestamp at `secs` with random microseconds.
    fn ts_rand(&mut self, secs: u64) {
        let micros = self.rng.below(1_000_000);
        self.ts(secs, micros);
    }

    fn uuid(&mut self) {
        let a = self.rng.next_u64();
        let b = self.rng.next_u64();
        self.hex(a >> 32, 8);
        self.out.push('-');
        self.hex((a >> 16) & 0xFFFF, 4);
        self.out.push('-');
        self.hex(0x4000 | (a & 0x0FFF), 4);
        self.out.push('-');
        self.hex(0x8000 | ((b >> 48) & 0x3FFF), 4);
        self.out.push('-');
        self.hex(b & 0xFFFF_FFFF_FFFF, 12);
    }

    fn ipv4(&mut self, a: u64, b: u64, c: u64, d: u64) {
        self.num(a);
        self.out.push('.');
        self.num(b);
        self.out.push('.');
        self.num(c);
        self.out.push('.');
        self.num(d);
    }

    fn agent_id(&mut self, n: u64) {
        self.raw("\"");
        self.raw(CLUSTER_ID);
        self.raw("-S");
        self.num(n);
        self.raw("\"");
    }

    /// Agent `n` is IPv6 every 16th agent.
    fn agent_is_v6(n: u64) -> bool {
        n % 16 == 15
    }

    /// The agent's address without brackets.
    fn agent_ip(&mut self, n: u64) {
        if Self::agent_is_v6(n) {
            self.raw("fd00::");
            self.hex_min(n + 1);
        } else {
            self.ipv4(10, 1 + (n / 62_500) % 250, (n / 250) % 250, 1 + n % 250);
        }
    }

    fn framework_id(&mut self, i: u64) {
        self.raw("\"");
        self.raw(CLUSTER_ID);
        self.raw("-");
        self.num(i / 1000);
        self.hex(i % 1000, 3);
        self.raw("\"");
    }

    fn document(&mut self, tasks: usize, frameworks: usize) {
        let start = BASE_TIME - 86_400 * 30;
        self.raw("{\"version\":\"1.11.0\",\"git_sha\":\"f2e2a5d62a4a4b8cfdb3ecdbc38a2c7ba5bcd3b5\",\"git_tag\":\"1.11.0\",\"build_date\":\"2020-11-19 20:15:04\",\"build_time\":1605816904.0,\"build_user\":\"root\",\"start_time\":");
        self.ts(start, 123_456);
        self.raw(",\"elected_time\":");
        self.ts(start + 12, 654_321);
        self.raw(",\"id\":\"");
        self.raw(CLUSTER_ID);
        self.raw("\",\"pid\":\"master@127.0.0.1:5050\",\"hostname\":\"127.0.0.1\",\"capabilities\":[\"AGENT_UPDATE\",\"AGENT_DRAINING\",\"QUOTA_V2\"],\"activated_slaves\":");
        self.num(self.agents as u64);
        self.raw(",\"deactivated_slaves\":0,\"unreachable_slaves\":0,\"cluster\":\"synth\",\"leader\":\"");
        self.raw(LEADER);
        self.raw("\",\"leader_info\":{\"id\":\"");
        self.raw(CLUSTER_ID);
        self.raw("\",\"pid\":\"master@127.0.0.1:5050\",\"port\":5050,\"hostname\":\"127.0.0.1\",\"address\":{\"hostname\":\"127.0.0.1\",\"ip\":\"127.0.0.1\",\"port\":5050},\"version\":\"1.11.0\"},\"log_dir\":\"/var/log/mesos\",\"flags\":{\"agent_ping_timeout\":\"15secs\",\"agent_reregister_timeout\":\"10mins\",\"allocation_interval\":\"1secs\",\"allocator\":\"hierarchical\",\"authenticate_agents\":\"false\",\"authenticate_frameworks\":\"false\",\"authenticate_http_frameworks\":\"false\",\"authenticate_http_readonly\":\"false\",\"authenticate_http_readwrite\":\"false\",\"cluster\":\"synth\",\"framework_sorter\":\"drf\",\"help\":\"false\",\"hostname_lookup\":\"true\",\"http_authenticators\":\"basic\",\"initialize_driver_logging\":\"true\",\"log_auto_initialize\":\"true\",\"log_dir\":\"/var/log/mesos\",\"logbufsecs\":\"0\",\"logging_level\":\"INFO\",\"max_agent_ping_timeouts\":\"5\",\"max_completed_frameworks\":\"50\",\"max_completed_tasks_per_framework\":\"1000\",\"port\":\"5050\",\"quiet\":\"false\",\"quorum\":\"2\",\"recovery_agent_removal_limit\":\"100%\",\"registry\":\"replicated_log\",\"registry_fetch_timeout\":\"1mins\",\"registry_store_timeout\":\"20secs\",\"registry_strict\":\"false\",\"root_submissions\":\"true\",\"user_sorter\":\"drf\",\"version\":\"false\",\"webui_dir\":\"/usr/share/mesos/webui\",\"work_dir\":\"/var/lib/mesos/master\",\"zk\":\"zk://127.0.0.1:2181/mesos\",\"zk_session_timeout\":\"10secs\"},\"slaves\":[");
        for n in 0..self.agents as u64 {
            if n > 0 {
                self.raw(",");
            }
            self.agent(n);
        }
        self.raw("],\"frameworks\":[");
        let base = tasks / frameworks;
        let extra = tasks % frameworks;
        for i in 0..frameworks {
            if i > 0 {
                self.raw(",");
            }
            let n = base + usize::from(i < extra);
            self.framework(i as u64, n as u64);
        }
        self.raw(
            "],\"completed_frameworks\":[],\"orphan_tasks\":[],\"unregistered_frameworks\":[]}",
        );
    }

    fn agent(&mut self, n: u64) {
        let reg = BASE_TIME - 86_400 * 20 + n * 7;
        let cpus = [8, 16, 32, 64][self.rng.below(4) as usize];
        let mem = cpus * 3_900;
        self.raw("{\"id\":");
        self.agent_id(n);
        self.raw(",\"hostname\":\"");
        self.agent_ip(n);
        self.raw("\",\"port\":5051,\"pid\":\"slave(1)@");
        if Self::agent_is_v6(n) {
            self.raw("[");
            self.agent_ip(n);
            self.raw("]");
        } else {
            self.agent_ip(n);
        }
        self.raw(":5051\",\"registered_time\":");
        self.ts_rand(reg);
        self.raw(",\"reregistered_time\":");
        self.ts_rand(reg + 3_600);
        self.raw(",\"resources\":{\"disk\":");
        self.num(cpus * 30_000);
        self.raw(".0,\"mem\":");
        self.num(mem);
        self.raw(".0,\"gpus\":0.0,\"cpus\":");
        self.num(cpus);
        self.raw(".0,\"ports\":\"[1025-2180, 2182-3887, 3889-5049, 5052-8079, 8082-8180, 8182-32000]\"},\"used_resources\":{\"disk\":0.0,\"mem\":");
        self.num(mem / 2);
        self.raw(".0,\"gpus\":0.0,\"cpus\":");
        self.num(cpus / 2);
        self.raw(".5},\"offered_resources\":{\"disk\":0.0,\"mem\":0.0,\"gpus\":0.0,\"cpus\":0.0},\"reserved_resources\":{},\"unreserved_resources\":{\"disk\":");
        self.num(cpus * 30_000);
        self.raw(".0,\"mem\":");
        self.num(mem);
        self.raw(".0,\"gpus\":0.0,\"cpus\":");
        self.num(cpus);
        self.raw(".0,\"ports\":\"[1025-2180, 2182-3887, 3889-5049, 5052-8079, 8082-8180, 8182-32000]\"},\"attributes\":{\"rack\":\"r");
        self.num(n / 40);
        self.raw("\",\"zone\":\"zone-");
        self.num(n % 3);
        self.raw("\"},\"active\":true,\"deactivated\":false,\"version\":\"1.11.0\",\"capabilities\":[\"MULTI_ROLE\",\"HIERARCHICAL_ROLE\",\"RESERVATION_REFINEMENT\",\"RESOURCE_PROVIDER\",\"RESIZE_VOLUME\",\"AGENT_OPERATION_FEEDBACK\",\"AGENT_DRAINING\",\"TASK_RESOURCE_LIMITS\"],\"reserved_resources_full\":{},\"unreserved_resources_full\":[{\"name\":\"cpus\",\"type\":\"SCALAR\",\"scalar\":{\"value\":");
        self.num(cpus);
        self.raw(
            ".0},\"role\":\"*\"},{\"name\":\"mem\",\"type\":\"SCALAR\",\"scalar\":{\"value\":",
        );
        self.num(mem);
        self.raw(".0},\"role\":\"*\"}],\"used_resources_full\":[],\"offered_resources_full\":[]}");
    }

    fn framework_name(&mut self, i: u64) -> String {
        if i == 0 {
            return "marathon".to_owned();
        }
        match i % 8 {
            0 => format!("marathon-user-{i}"),
            1 => format!("Spark Cluster.{i}"),
            2 => format!("kafka.prod-{i}"),
            3 => format!("chronos with a space AND MIXED CASE-{i}.0.1"),
            4 => format!("cassandra-{i}"),
            5 => format!("jenkins.CI.{i}"),
            6 => format!("hdfs-{i}"),
            _ => format!("Elastic Search-{i}"),
        }
    }

    fn framework(&mut self, i: u64, tasks: u64) {
        let name = self.framework_name(i);
        let reg = BASE_TIME - 86_400 * 10 + i * 31;
        let port = 10_000 + self.rng.below(20_000);
        let (a, b) = (1 + i / 250 % 250, 1 + i % 250);
        self.raw("{\"id\":");
        self.framework_id(i);
        self.raw(",\"name\":");
        self.str_lit(&name);
        // Every 10th framework (from the 10th) has no pid, only a hostname IP literal;
        // the 5th of every 10 has an IPv6 pid; the rest an IPv4 pid.
        let has_pid = i % 10 != 9;
        if has_pid {
            self.raw(",\"pid\":\"scheduler(1)@");
            if i % 10 == 4 {
                self.raw("[fd00::fa:");
                self.hex_min(i + 1);
                self.raw("]");
            } else {
                self.ipv4(10, 250, a, b);
            }
            self.raw(":");
            self.num(port);
            self.raw("\",\"hostname\":\"fw-");
            self.num(i);
            self.raw(".synth.internal\"");
        } else {
            self.raw(",\"hostname\":\"");
            self.ipv4(10, 250, a, b);
            self.raw("\"");
        }
        self.raw(",\"used_resources\":{\"disk\":0.0,\"mem\":");
        self.num(tasks * 256);
        self.raw(".0,\"gpus\":0.0,\"cpus\":");
        self.num(tasks / 2);
        self.raw(".0},\"offered_resources\":{\"disk\":0.0,\"mem\":0.0,\"gpus\":0.0,\"cpus\":0.0},\"capabilities\":[\"PARTITION_AWARE\",\"TASK_KILLING_STATE\",\"GPU_RESOURCES\",\"REGION_AWARE\"],\"webui_url\":\"http://fw-");
        self.num(i);
        self.raw(".synth.internal:8080\",\"active\":true,\"connected\":true,\"recovered\":false,\"user\":\"root\",\"failover_timeout\":604800.0,\"checkpoint\":true,\"registered_time\":");
        self.ts_rand(reg);
        self.raw(",\"unregistered_time\":0.0,\"principal\":\"");
        self.raw(if i == 0 { "marathon" } else { "framework" });
        self.raw("\",\"resources\":{\"disk\":0.0,\"mem\":");
        self.num(tasks * 256);
        self.raw(".0,\"gpus\":0.0,\"cpus\":");
        self.num(tasks / 2);
        self.raw(".0},\"role\":\"*\",\"roles\":[\"*\"],\"tasks\":[");
        let mut app: Option<App> = None;
        let mut app_idx = 0;
        for t in 0..tasks {
            if t > 0 {
                self.raw(",");
            }
            let mut cur = match app.take() {
                Some(a) if a.remaining > 0 => a,
                _ => {
                    app_idx += 1;
                    self.new_app(app_idx)
                }
            };
            cur.remaining -= 1;
            let state = match self.rng.below(1000) {
                0..=19 => "TASK_STAGING",
                20..=34 => "TASK_KILLED",
                35..=49 => "TASK_FINISHED",
                _ => "TASK_RUNNING",
            };
            // Only the shown state changes: the task is built (and draws its random numbers)
            // as it would be without `kill_every`, so every other task stays the same.
            let shown = if self.kill_every > 0 && t % self.kill_every as u64 == 0 {
                "TASK_KILLED"
            } else {
                state
            };
            self.task(i, &cur, state, shown);
            app = Some(cur);
        }
        self.raw("],\"unreachable_tasks\":[],\"completed_tasks\":[");
        // One or two completed tasks per framework: ignored by Mesos-DNS, present in real masters.
        let completed = 1 + self.rng.below(2);
        for c in 0..completed {
            if c > 0 {
                self.raw(",");
            }
            let done = self.new_app(1000 + c);
            self.task(i, &done, "TASK_FINISHED", "TASK_FINISHED");
        }
        self.raw("],\"offers\":[],\"executors\":[]}");
    }

    fn new_app(&mut self, idx: u64) -> App {
        let a = self.rng.pick(APP_WORDS);
        let b = self.rng.pick(APP_KINDS);
        let name = match self.rng.below(10) {
            0..=5 => format!("{a}-{b}-{idx}"),
            6 | 7 => format!("{a}.{b}-{idx}"),
            8 => {
                let mut cap = a.to_owned();
                cap[..1].make_ascii_uppercase();
                format!("{cap}-{}-{idx}", b.to_ascii_uppercase())
            }
            _ => format!("{a}_{b}{idx}"),
        };
        let source = match self.rng.below(100) {
            0..=24 => IpSource::NetInfo { v6: false },
            25..=29 => IpSource::NetInfo { v6: true },
            30..=32 => IpSource::NetInfoLegacy,
            33..=47 => IpSource::Docker,
            48..=57 => IpSource::Mesos,
            _ => IpSource::Host,
        };
        let port_ranges = match self.rng.below(100) {
            0..=2 => 0,
            3..=6 => 1,
            7..=9 => 2,
            10..=59 => 3,
            60..=84 => 4,
            _ => 5,
        };
        let discovery = if self.rng.chance(100) {
            Some(match self.rng.below(10) {
                0..=4 => name.clone(),
                5..=7 => format!("{a}.{b}.svc{idx}"),
                8 => format!("{}.{b}-{idx}", a.to_ascii_uppercase()),
                _ => String::new(),
            })
        } else {
            None
        };
        App {
            name,
            remaining: 1 + self.rng.below(8),
            source,
            port_ranges,
            discovery,
            docker: source != IpSource::Mesos && self.rng.chance(700),
            image_version: self.rng.below(40),
        }
    }

    /// One task built as one in `state`, whose `state` field says `shown`.
    fn task(&mut self, fw: u64, app: &App, state: &str, shown: &str) {
        let k = self.task_serial;
        self.task_serial += 1;
        let agent = self.rng.below(self.agents as u64);
        let started = BASE_TIME + self.rng.below(5_000_000);
        let container_id_a = self.rng.next_u64();
        let container_id_b = self.rng.next_u64();

        // Resource ports: up to three ascending ranges of one or two ports each.
        let mut ports: [(u64, u64); 3] = [(0, 0); 3];
        let nranges = app.port_ranges.saturating_sub(2) as usize;
        let mut p = 31_000 + self.rng.below(900);
        for r in ports.iter_mut().take(nranges) {
            let len = self.rng.below(2);
            *r = (p, p + len);
            p += len + 1 + self.rng.below(20);
        }

        self.raw("{\"id\":\"");
        self.raw(&app.name);
        self.raw(".");
        self.uuid();
        self.raw("\",\"name\":");
        self.str_lit(&app.name);
        self.raw(",\"framework_id\":");
        self.framework_id(fw);
        self.raw(",\"executor_id\":\"\",\"slave_id\":");
        self.agent_id(agent);
        self.raw(",\"state\":\"");
        self.raw(shown);
        self.raw("\",\"resources\":{\"disk\":0.0,\"mem\":");
        let mem = 128 << self.rng.below(5);
        self.num(mem);
        self.raw(".0,\"gpus\":0.0,\"cpus\":0.");
        let cpus_tenths = 1 + self.rng.below(9);
        self.num(cpus_tenths);
        match app.port_ranges {
            0 => {}
            1 => self.raw(",\"ports\":\"\""),
            2 => self.raw(",\"ports\":\"[]\""),
            _ => {
                self.raw(",\"ports\":\"[");
                for (j, &(lo, hi)) in ports.iter().take(nranges).enumerate() {
                    if j > 0 {
                        self.raw(", ");
                    }
                    self.num(lo);
                    self.raw("-");
                    self.num(hi);
                }
                self.raw("]\"");
            }
        }
        self.raw("},\"role\":\"*\",\"statuses\":[");
        self.statuses(k, app, state, started, (container_id_a, container_id_b));
        self.raw("],\"labels\":[{\"key\":\"MARATHON_APP_ID\",\"value\":\"/");
        self.raw(&app.name);
        self.raw("\"},{\"key\":\"MARATHON_APP_VERSION\",\"value\":\"2023-11-");
        self.num(10 + app.image_version % 18);
        self.raw("T12:34:56.789Z\"},{\"key\":\"HAPROXY_GROUP\",\"value\":\"external\"},{\"key\":\"team\",\"value\":\"platform\"},{\"key\":\"DCOS_PACKAGE_OPTIONS\",\"value\":\"");
        self.raw(PACKAGE_OPTIONS);
        self.raw("\"}],\"user\":\"nobody\"");
        if let Some(dname) = &app.discovery {
            self.raw(",\"discovery\":{\"visibility\":\"FRAMEWORK\"");
            if !dname.is_empty() {
                self.raw(",\"name\":");
                self.str_lit(dname);
            }
            self.raw(",\"ports\":{\"ports\":[");
            let fallback = [(8080, 8080)];
            let di_ports = if nranges == 0 {
                &fallback[..]
            } else {
                &ports[..nranges]
            };
            for (j, &(number, _)) in di_ports.iter().enumerate() {
                if j > 0 {
                    self.raw(",");
                }
                self.raw("{\"number\":");
                self.num(number);
                let proto = self.rng.pick(PROTOCOLS);
                self.raw(",\"protocol\":\"");
                self.raw(proto);
                self.raw("\",\"name\":\"");
                let pname = self.rng.pick(PORT_NAMES);
                self.raw(pname);
                self.raw("\",\"labels\":{\"labels\":[{\"key\":\"VIP_0\",\"value\":\"/");
                self.raw(&app.name);
                self.raw(":");
                self.num(80 + j as u64);
                self.raw("\"}]}}");
            }
            self.raw("]},\"labels\":{\"labels\":[{\"key\":\"env\",\"value\":\"prod\"}]}}");
        }
        if app.docker {
            self.raw(",\"container\":{\"type\":\"DOCKER\",\"docker\":{\"image\":\"registry.synth.internal/");
            self.raw(&app.name);
            self.raw(":1.");
            self.num(app.image_version);
            self.raw(".0\",\"network\":\"");
            self.raw(if app.source == IpSource::Host {
                "HOST"
            } else {
                "BRIDGE"
            });
            self.raw("\",\"port_mappings\":[");
            for (j, &(lo, _)) in ports.iter().take(nranges).enumerate() {
                if j > 0 {
                    self.raw(",");
                }
                self.raw("{\"host_port\":");
                self.num(lo);
                self.raw(",\"container_port\":");
                self.num(8080 + j as u64);
                self.raw(",\"protocol\":\"tcp\"}");
            }
            self.raw("],\"privileged\":false,\"force_pull_image\":false,\"parameters\":[{\"key\":\"log-driver\",\"value\":\"json-file\"}]},\"volumes\":[{\"container_path\":\"/data\",\"host_path\":\"/var/lib/mesos/volumes/");
            self.raw(&app.name);
            self.raw("\",\"mode\":\"RW\"}]}");
        } else {
            self.raw(",\"container\":{\"type\":\"MESOS\",\"mesos\":{\"image\":{\"type\":\"DOCKER\",\"docker\":{\"name\":\"library/");
            self.raw(&app.name);
            self.raw(":1.");
            self.num(app.image_version);
            self.raw(
                "\"},\"cached\":true}},\"network_infos\":[{\"name\":\"dcos\",\"labels\":{}}]}",
            );
        }
        self.raw(",\"health_check\":{\"type\":\"HTTP\",\"http\":{\"port\":");
        self.num(if nranges == 0 { 8080 } else { ports[0].0 });
        self.raw(",\"path\":\"/health\",\"scheme\":\"http\",\"statuses\":[200,204]},\"delay_seconds\":15.0,\"interval_seconds\":10.0,\"timeout_seconds\":20.0,\"consecutive_failures\":3,\"grace_period_seconds\":300.0},\"kill_policy\":{\"grace_period\":{\"nanoseconds\":3000000000}}}");
    }

    /// Writes the `statuses[]` elements of one task.
    fn statuses(&mut self, k: u64, app: &App, state: &str, started: u64, container: (u64, u64)) {
        if state == "TASK_STAGING" {
            return; // a staging task has no status updates yet
        }
        let mut first = true;
        if self.rng.chance(500) {
            self.status(k, app, "TASK_STARTING", started, None, false, container);
            first = false;
        }
        let running = state == "TASK_RUNNING";
        // Some running tasks got a second TASK_RUNNING update (a health change); half of
        // those list the newer one first, so "latest" must be chosen by timestamp.
        let two = self.rng.chance(200);
        let health = if running && self.rng.chance(100) {
            Some(self.rng.chance(700))
        } else {
            None
        };
        let t1 = started + 1 + self.rng.below(5);
        let t2 = t1 + 30 + self.rng.below(600);
        let (order_newer_first, older_health) = (two && self.rng.chance(500), health.map(|h| !h));
        if !first {
            self.raw(",");
        }
        if two && order_newer_first {
            self.status(k, app, "TASK_RUNNING", t2, health, false, container);
            self.raw(",");
            self.status(k, app, "TASK_RUNNING", t1, older_health, true, container);
        } else if two {
            self.status(k, app, "TASK_RUNNING", t1, older_health, true, container);
            self.raw(",");
            self.status(k, app, "TASK_RUNNING", t2, health, false, container);
        } else {
            self.status(k, app, "TASK_RUNNING", t1, health, false, container);
        }
        if !running {
            self.raw(",");
            self.status(k, app, state, t2 + 3_600, None, false, container);
        }
    }

    /// One status object. `stale` gives an older container IP (only a superseded
    /// TASK_RUNNING status carries one).
    #[allow(clippy::too_many_arguments)] // a private helper; a struct would only add noise
    fn status(
        &mut self,
        k: u64,
        app: &App,
        state: &str,
        ts: u64,
        healthy: Option<bool>,
        stale: bool,
        container: (u64, u64),
    ) {
        self.raw("{\"state\":\"");
        self.raw(state);
        self.raw("\",\"timestamp\":");
        self.ts_rand(ts);
        if let Some(h) = healthy {
            self.raw(if h {
                ",\"healthy\":true"
            } else {
                ",\"healthy\":false"
            });
        }
        // Container IPs: 172.16.0.0/12 for current, 192.168.0.0/16 for stale statuses.
        let (a, b, c, d) = if stale {
            (192, 168, (k >> 8) & 0xFF, k & 0xFF)
        } else {
            (172, 16 + ((k >> 16) & 0xF), (k >> 8) & 0xFF, k & 0xFF)
        };
        let label_key = match app.source {
            IpSource::Docker => Some("Docker.NetworkSettings.IPAddress"),
            IpSource::Mesos => Some("MesosContainerizer.NetworkSettings.IPAddress"),
            _ => None,
        };
        self.raw(",\"labels\":[{\"key\":\"source\",\"value\":\"synth\"}");
        if let Some(key) = label_key {
            self.raw(",{\"key\":\"");
            self.raw(key);
            self.raw("\",\"value\":\"");
            self.ipv4(a, b, c, d);
            self.raw("\"}");
        }
        self.raw("],\"source\":\"SOURCE_EXECUTOR\",\"uuid\":\"");
        let status_uuid = self.rng.next_u64();
        self.hex(status_uuid, 16);
        self.raw("\",\"container_status\":{\"container_id\":{\"value\":\"");
        self.hex(container.0, 16);
        self.hex(container.1, 16);
        self.raw("\"}");
        match app.source {
            IpSource::NetInfo { v6 } => {
                self.raw(",\"network_infos\":[{\"ip_addresses\":[{\"protocol\":\"IPv4\",\"ip_address\":\"");
                self.ipv4(a, b, c, d);
                self.raw("\"}");
                if v6 {
                    self.raw(",{\"protocol\":\"IPv6\",\"ip_address\":\"fd01::");
                    // Canonical text form: fd01::1:H:L (current) or fd01::dead:H:L (stale).
                    self.raw(if stale { "dead:" } else { "1:" });
                    self.hex_min((k >> 16) & 0xFFFF);
                    self.raw(":");
                    self.hex_min(k & 0xFFFF);
                    self.raw("\"}");
                }
                self.raw("],\"name\":\"dcos\",\"labels\":{}}]");
            }
            IpSource::NetInfoLegacy => {
                self.raw(",\"network_infos\":[{\"ip_address\":\"");
                self.ipv4(a, b, c, d);
                self.raw("\",\"name\":\"dcos\"}]");
            }
            IpSource::Host if k.is_multiple_of(2) => {
                // Host networking with an explicit, empty network_infos list.
                self.raw(",\"network_infos\":[]");
            }
            _ => {}
        }
        self.raw(",\"cgroup_info\":{\"net_cls\":{\"classid\":");
        self.num(0x10_0000 + (k & 0xFFFF));
        self.raw("}},\"executor_pid\":1");
        self.num(k % 100_000);
        self.raw("}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks_of(doc: &serde_json::Value) -> Vec<&serde_json::Value> {
        doc["frameworks"]
            .as_array()
            .expect("frameworks")
            .iter()
            .flat_map(|f| f["tasks"].as_array().expect("tasks"))
            .collect()
    }

    #[test]
    fn kill_every_kills_those_tasks_and_changes_nothing_else() {
        let spec = SynthSpec::with_tasks(600);
        let variant = SynthSpec {
            kill_every: 10,
            ..spec
        };
        let a: serde_json::Value = serde_json::from_str(&generate(&spec)).expect("json");
        let b: serde_json::Value = serde_json::from_str(&generate(&variant)).expect("json");
        let (ta, tb) = (tasks_of(&a), tasks_of(&b));
        assert_eq!(ta.len(), tb.len());
        let mut killed = 0;
        let mut per_framework = 0;
        let mut framework = None;
        for (x, y) in ta.iter().zip(&tb) {
            if framework != Some(&x["framework_id"]) {
                framework = Some(&x["framework_id"]);
                per_framework = 0;
            }
            let mut y = (*y).clone();
            if per_framework % 10 == 0 {
                assert_eq!(y["state"], "TASK_KILLED", "{}", x["id"]);
                killed += usize::from(x["state"] != "TASK_KILLED");
                y["state"] = x["state"].clone();
            }
            assert_eq!(*x, &y, "only the state of every 10th task differs");
            per_framework += 1;
        }
        assert!(killed >= 40, "{killed} running/staging tasks killed");
        assert_eq!(a["slaves"], b["slaves"]);
    }

    #[test]
    fn deterministic_and_seed_sensitive() {
        let spec = SynthSpec::with_tasks(500);
        assert_eq!(generate(&spec), generate(&spec));
        let other = SynthSpec {
            seed: spec.seed + 1,
            ..spec
        };
        assert_ne!(generate(&spec), generate(&other));
    }

    #[test]
    fn parses_with_requested_counts() {
        for spec in [
            SynthSpec::with_tasks(0),
            SynthSpec::with_tasks(1),
            SynthSpec::with_tasks(1234),
            SynthSpec {
                tasks: 50,
                frameworks: 0,
                agents: 0,
                seed: 7,
                kill_every: 0,
            },
            SynthSpec {
                tasks: 10,
                frameworks: 30,
                agents: 3,
                seed: 8,
                kill_every: 0,
            },
        ] {
            let text = generate(&spec);
            let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(doc["leader"], "master@127.0.0.1:5050");
            assert_eq!(tasks_of(&doc).len(), spec.tasks, "{spec:?}");
            assert_eq!(
                doc["frameworks"].as_array().expect("fw").len(),
                spec.frameworks.max(1)
            );
            assert_eq!(
                doc["slaves"].as_array().expect("slaves").len(),
                spec.agents.max(1)
            );
        }
    }

    #[test]
    fn covers_every_case() {
        let text = generate(&SynthSpec::with_tasks(5000));
        let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let tasks = tasks_of(&doc);
        let per_task = text.len() / tasks.len();
        assert!(
            (2000..=3200).contains(&per_task),
            "bytes per task {per_task}"
        );
        let has = |needle: &str| text.contains(needle);
        for needle in [
            "slave(1)@[fd00::",
            "scheduler(1)@[fd00::",
            "Docker.NetworkSettings.IPAddress",
            "MesosContainerizer.NetworkSettings.IPAddress",
            "\"protocol\":\"IPv6\"",
            "\"network_infos\":[{\"ip_address\":",
            "\"healthy\":true",
            "\"healthy\":false",
            "\"ports\":\"\"",
            "\"ports\":\"[]\"",
            "\"protocol\":\"udp\"",
            "\"protocol\":\"\"",
            "\"state\":\"TASK_STAGING\"",
            "\"state\":\"TASK_KILLED\"",
        ] {
            assert!(has(needle), "missing {needle}");
        }
        let fws = doc["frameworks"].as_array().expect("fw");
        assert!(fws.iter().any(|f| f.get("pid").is_none()));
        assert!(
            fws.iter()
                .any(|f| f["name"].as_str().is_some_and(|n| n.contains(' ')))
        );
        let running = tasks
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING")
            .count();
        assert!(running * 100 > tasks.len() * 90 && running * 100 < tasks.len() * 99);
        let disc = tasks
            .iter()
            .filter(|t| t.get("discovery").is_some())
            .count();
        assert!(
            disc * 100 > tasks.len() * 5 && disc * 100 < tasks.len() * 16,
            "{disc}"
        );
        let mut names: Vec<&str> = tasks.iter().filter_map(|t| t["name"].as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert!(
            names.len() * 2 < tasks.len(),
            "app names repeat across tasks"
        );
        let two_running = tasks.iter().any(|t| {
            t["statuses"]
                .as_array()
                .is_some_and(|s| s.iter().filter(|s| s["state"] == "TASK_RUNNING").count() == 2)
        });
        assert!(two_running);
    }
}
