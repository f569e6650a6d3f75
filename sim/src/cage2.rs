//! CAGE Challenge 2, reproduced: its 13-host network, its two scripted attackers
//! (B_line and Meander), the defender's 145 actions, the reward, and the table the
//! defender observes.
//!
//! CAGE 2 (TTCP's Cyber Autonomy Gym for Experimentation, challenge 2, 2022; CybORG
//! v2) is the reference point of learned intrusion response. The rules here were read
//! from the challenge's public code (the scenario file, the host images, the red and
//! blue actions, the reward calculators and the wrappers the evaluation uses) and
//! written anew as a compact state machine, so that a defender trained in hale can be
//! set beside the challenge's published scores. What CybORG does is reproduced, quirks
//! included; where this model had to choose, the doc comments say so.
//!
//! One step: the defender acts, then the attacker acts, then the reward is taken on the
//! resulting state, then the monitoring (Velociraptor) reports what happened, which is
//! all the defender observes. Randomness is one seeded stream for the attacker
//! ([`StreamId::Attacker`]): exploit choice, detection, and the agents' own choices.
//!
//! ```
//! use hale_sim::cage2::{Cage2, Red, BLUE_ACTIONS};
//! let mut game = Cage2::new(Red::BLine, 1);
//! let mut total = 0.0;
//! for _ in 0..100 {
//!     total += game.step(0).reward; // the defender sleeps
//! }
//! assert!(total < -900.0, "B_line reaches the operational server: {total}");
//! assert_eq!(BLUE_ACTIONS, 145);
//! ```

use crate::rng::{Stream, StreamId};

/// Hosts, in the defender table's order (sorted by hostname, as CybORG's table is).
pub const HOSTS: [&str; 13] = [
    "Defender",
    "Enterprise0",
    "Enterprise1",
    "Enterprise2",
    "Op_Host0",
    "Op_Host1",
    "Op_Host2",
    "Op_Server0",
    "User0",
    "User1",
    "User2",
    "User3",
    "User4",
];
const N: usize = HOSTS.len();
const DEFENDER: usize = 0;
const ENT0: usize = 1;
const ENT1: usize = 2;
const ENT2: usize = 3;
const OP_SERVER: usize = 7;
const USER0: usize = 8;

/// The defender's actions: sleep, monitor, then per host analyse, remove, the eight
/// decoys, restore (CybORG's `EnumActionWrapper` order).
pub const BLUE_ACTIONS: usize = 2 + 11 * N;
/// Features per host in the observation: activity (2 bits), compromise (2 bits).
pub const OBS_PER_HOST: usize = 4;
/// The observation's length (CybORG's `ChallengeWrapper` vector).
pub const OBS_LEN: usize = OBS_PER_HOST * N;

/// The three subnets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subnet {
    User = 0,
    Enterprise = 1,
    Operational = 2,
}

fn subnet(h: usize) -> Subnet {
    match h {
        0..=3 => Subnet::Enterprise,
        4..=7 => Subnet::Operational,
        _ => Subnet::User,
    }
}

fn subnet_hosts(s: Subnet) -> u16 {
    (0..N)
        .filter(|&h| subnet(h) == s)
        .fold(0, |m, h| m | 1 << h)
}

fn windows(h: usize) -> bool {
    matches!(h, ENT1 | ENT2 | 8..=10)
}

/// Ports that matter (bit positions in a port mask).
#[derive(Clone, Copy)]
enum Port {
    P21 = 0,
    P22,
    P25,
    P53,
    P68,
    P80,
    P135,
    P139,
    P443,
    P445,
    P3389,
    P3390,
}
use Port::*;

const fn bit(p: Port) -> u16 {
    1 << p as u16
}

/// The listening sockets of a host's image (a port twice where two do listen on it:
/// a port scan reports each).
const fn listening(h: usize) -> &'static [Port] {
    match h {
        DEFENDER => &[P22, P53, P53, P68],
        ENT1 | ENT2 => &[P22, P135, P3389, P445, P139, P80, P443],
        8 | 9 => &[P22, P21],
        10 => &[P445, P139, P135, P3389],
        11 => &[P80, P3389, P443, P25],
        12 => &[P22, P80, P3390, P443, P25],
        _ => &[P22], // Enterprise0, the operational hosts and server: sshd only
    }
}

fn real_ports(h: usize) -> u16 {
    const PORTS: [u16; N] = {
        let mut t = [0; N];
        let mut h = 0;
        while h < N {
            let l = listening(h);
            let mut i = 0;
            while i < l.len() {
                t[h] |= bit(l[i]);
                i += 1;
            }
            h += 1;
        }
        t
    };
    PORTS[h]
}

/// The exploits of `ExploitRemoteService`, with the port each needs and the weight by
/// which the attacker prefers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exploit {
    Ftp,
    Haraka,
    Sql,
    HttpsRfi,
    HttpRfi,
    EternalBlue,
    BlueKeep,
    SshBruteForce,
}
use Exploit::*;

const EXPLOITS: [Exploit; 8] = [
    Ftp,
    Haraka,
    Sql,
    HttpsRfi,
    HttpRfi,
    EternalBlue,
    BlueKeep,
    SshBruteForce,
];

impl Exploit {
    fn port(self) -> Port {
        match self {
            Ftp => P21,
            Haraka => P25,
            Sql => P3390,
            HttpsRfi => P443,
            HttpRfi => P80,
            EternalBlue => P139,
            BlueKeep => P3389,
            SshBruteForce => P22,
        }
    }

    fn weight(self) -> f64 {
        match self {
            Ftp => 7.0,
            Haraka => 6.0,
            Sql => 5.0,
            HttpsRfi => 4.0,
            HttpRfi => 3.0,
            EternalBlue => 2.0,
            BlueKeep => 1.0,
            SshBruteForce => 0.1,
        }
    }

    /// Whether a scan that found `ports` offers this exploit (SQL injection also needs
    /// a web server).
    fn offered(self, ports: u16) -> bool {
        ports & bit(self.port()) != 0 && (self != Sql || ports & (bit(P80) | bit(P443)) != 0)
    }
}

/// What an exploit meets on a host's own (non-decoy) process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// No process of the exploit's type listens on its port: nothing happens.
    NoProcess,
    /// The process is there but not vulnerable: the attempt is seen, and fails.
    NotVulnerable,
    /// A shell as an ordinary user.
    User,
    /// A shell as root or SYSTEM (the process runs as one).
    Privileged,
}

/// The images' processes, exploit by exploit. EternalBlue needs an `smb` process,
/// which the Enterprise hosts' `smss.exe` is not; BlueKeep needs `rdp`, which User3's
/// port 3389 (MySQL) is not; the web servers are vulnerable to the RFIs; SSH brute
/// force finds a weak account everywhere but on the Defender.
fn outcome(h: usize, e: Exploit) -> Outcome {
    use Outcome::*;
    match (h, e) {
        (DEFENDER, SshBruteForce) => NotVulnerable,
        (ENT1 | ENT2, HttpsRfi | HttpRfi | SshBruteForce) => User,
        (ENT1 | ENT2, BlueKeep) => Privileged,
        (8 | 9, Ftp) => Privileged,
        (8 | 9, SshBruteForce) => User,
        (10, EternalBlue) => Privileged,
        (10, BlueKeep) => User,
        (11, Haraka) => Privileged,
        (11, HttpsRfi | HttpRfi) => User,
        (12, Haraka | Sql) => Privileged,
        (12, HttpsRfi | HttpRfi) => User,
        (1 | 4..=7 | 12, SshBruteForce) => User,
        _ => NoProcess,
    }
}

/// CybORG 2's decoys, in action order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoy {
    /// Apache on port 80.
    Apache,
    /// Femitter FTP on port 21 (Windows).
    Femitter,
    /// Haraka SMTP on port 25 (Linux).
    HarakaSmtp,
    /// smss (SMB) on port 139 (Windows).
    Smss,
    /// sshd on port 22.
    Sshd,
    /// svchost (RDP) on port 3389 (Windows).
    Svchost,
    /// Tomcat on port 443.
    Tomcat,
    /// "vsftpd" (Linux): in CybORG it listens on port 80 as a web server, so it
    /// catches HTTP RFI, not FTP; reproduced as it is.
    Vsftpd,
}

const DECOYS: [Decoy; 8] = [
    Decoy::Apache,
    Decoy::Femitter,
    Decoy::HarakaSmtp,
    Decoy::Smss,
    Decoy::Sshd,
    Decoy::Svchost,
    Decoy::Tomcat,
    Decoy::Vsftpd,
];

impl Decoy {
    fn port(self) -> Port {
        match self {
            Decoy::Apache | Decoy::Vsftpd => P80,
            Decoy::Femitter => P21,
            Decoy::HarakaSmtp => P25,
            Decoy::Smss => P139,
            Decoy::Sshd => P22,
            Decoy::Svchost => P3389,
            Decoy::Tomcat => P443,
        }
    }

    fn fits(self, h: usize) -> bool {
        match self {
            Decoy::Femitter | Decoy::Smss | Decoy::Svchost => windows(h),
            Decoy::HarakaSmtp | Decoy::Vsftpd => !windows(h),
            _ => true,
        }
    }
}

/// A defender action, decoded from its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlueAction {
    /// Nothing.
    Sleep,
    /// Collect the monitoring events (done after every step anyway).
    Monitor,
    /// Look for malware files on a host (reveals a privileged compromise).
    Analyse(usize),
    /// Kill the attacker's detected, unprivileged processes on a host.
    Remove(usize),
    /// Start a decoy service on a host.
    Decoy(Decoy, usize),
    /// Restore a host from its image: every attacker foothold and decoy on it goes.
    /// Costs 1.
    Restore(usize),
}

impl BlueAction {
    /// The action with index `a` (`0..BLUE_ACTIONS`).
    pub fn decode(a: usize) -> Option<BlueAction> {
        Some(match a {
            0 => BlueAction::Sleep,
            1 => BlueAction::Monitor,
            _ if a < BLUE_ACTIONS => {
                let (kind, h) = ((a - 2) / N, (a - 2) % N);
                match kind {
                    0 => BlueAction::Analyse(h),
                    1 => BlueAction::Remove(h),
                    10 => BlueAction::Restore(h),
                    d => BlueAction::Decoy(DECOYS[d - 2], h),
                }
            }
            _ => return None,
        })
    }

    /// The index of this action.
    pub fn index(self) -> usize {
        match self {
            BlueAction::Sleep => 0,
            BlueAction::Monitor => 1,
            BlueAction::Analyse(h) => 2 + h,
            BlueAction::Remove(h) => 2 + N + h,
            BlueAction::Decoy(d, h) => 2 + (2 + d as usize) * N + h,
            BlueAction::Restore(h) => 2 + 10 * N + h,
        }
    }

    /// `Restore Op_Server0`, `Sleep`, …, as CybORG prints actions.
    pub fn describe(self) -> String {
        match self {
            BlueAction::Sleep => "Sleep".into(),
            BlueAction::Monitor => "Monitor".into(),
            BlueAction::Analyse(h) => format!("Analyse {}", HOSTS[h]),
            BlueAction::Remove(h) => format!("Remove {}", HOSTS[h]),
            BlueAction::Decoy(d, h) => format!("Decoy{d:?} {}", HOSTS[h]),
            BlueAction::Restore(h) => format!("Restore {}", HOSTS[h]),
        }
    }
}

/// Which scripted attacker plays red.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Red {
    /// Does nothing (CAGE 2's `SleepAgent`).
    Sleep,
    /// Straight for the operational server: a user host, its Enterprise server,
    /// Enterprise2, Op_Server0, impact (CAGE 2's `B_lineAgent`).
    BLine,
    /// Scans and takes everything it finds, subnet by subnet, and impacts the
    /// operational server as soon as it can (CAGE 2's `RedMeanderAgent`).
    Meander,
}

/// An attacker action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedAction {
    /// Nothing.
    Sleep,
    /// Ping sweep of a subnet: every host's address in it.
    DiscoverRemoteSystems(u8),
    /// Port scan of a host.
    DiscoverNetworkServices(usize),
    /// Exploit a service found by the scan.
    ExploitRemoteService(usize),
    /// Escalate to root/SYSTEM on a host where red has a shell, and explore it.
    PrivilegeEscalate(usize),
    /// Stop the operational service.
    Impact(usize),
}

impl RedAction {
    /// A short name of the action's kind.
    pub fn kind(self) -> &'static str {
        match self {
            RedAction::Sleep => "Sleep",
            RedAction::DiscoverRemoteSystems(_) => "DiscoverRemoteSystems",
            RedAction::DiscoverNetworkServices(_) => "DiscoverNetworkServices",
            RedAction::ExploitRemoteService(_) => "ExploitRemoteService",
            RedAction::PrivilegeEscalate(_) => "PrivilegeEscalate",
            RedAction::Impact(_) => "Impact",
        }
    }
}

/// What the defender's table says a host's activity was this step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Nothing unusual.
    None,
    /// Connections that look like a scan.
    Scan,
    /// A connection that looks like an exploit (a reverse shell).
    Exploit,
}

/// What the defender's table believes about a host (kept between steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compromise {
    /// Clean as far as the defender knows.
    No,
    /// Was compromised; a remove may or may not have worked.
    Unknown,
    /// An exploit was seen.
    User,
    /// Analysis found malware.
    Privileged,
}

/// What a step did, besides the observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcomes {
    /// The defender's reward (CybORG's, rounded to tenths as CybORG rounds it).
    pub reward: f64,
    /// Its confidentiality part: minus the value of every host where red is root.
    pub confidentiality: f64,
    /// Its availability part: −10 while the operational service is stopped.
    pub availability: f64,
    /// The restores' cost (−1 per restore).
    pub action_cost: f64,
    /// The attacker's action.
    pub red: RedAction,
    /// Whether it worked.
    pub red_success: bool,
    /// Hosts where the attacker has a shell (any privilege), besides User0, its way in.
    pub footholds: u32,
    /// Of those, the hosts where it is root or SYSTEM.
    pub privileged: u32,
    /// Whether the defender's action did something (anything but sleep and monitor).
    pub blue_acted: bool,
}

/// Monitoring events of one host in one step, as the table wrapper reads them.
#[derive(Clone, Copy, Debug, Default)]
struct Events {
    /// Anomalous processes seen (connections, and a decoy the defender started).
    items: u8,
    /// Local ports among them: fixed ones as a mask, ephemeral ones counted.
    ports: u16,
    ephemeral: u8,
    /// One of them talks to port 4444 (a reverse shell).
    reverse_shell: bool,
    /// The first is a service the defender started (a decoy).
    first_is_service: bool,
    /// Analysis found malware files.
    malware: bool,
}

impl Events {
    fn connection(&mut self, p: Port) {
        self.items += 1;
        self.ports |= bit(p);
    }

    /// CybORG's `_interpret_connections`, on what this step's events hold.
    fn activity(&self) -> Option<Activity> {
        if self.items == 0 {
            return None;
        }
        let distinct = self.ports.count_ones() as u8 + self.ephemeral;
        Some(if self.items >= 3 && distinct >= 3 {
            Activity::Scan
        } else if self.reverse_shell || (self.items >= 3 && distinct == 1) {
            Activity::Exploit
        } else if self.first_is_service {
            Activity::None
        } else {
            Activity::Scan
        })
    }
}

/// The attacker's footholds on one host.
#[derive(Clone, Copy, Debug, Default)]
struct Shells {
    /// Unprivileged shells whose process the monitoring reported (a remove kills them).
    user_known: u8,
    /// Unprivileged shells it did not (5 % of exploits, and every SSH login).
    user_unknown: u8,
    /// Root or SYSTEM shells (a remove cannot kill them).
    root: u8,
}

impl Shells {
    fn any(&self) -> bool {
        self.user_known + self.user_unknown + self.root > 0
    }
}

/// What red knows (CybORG's red abstract session: shared by its actions).
#[derive(Clone, Copy, Debug)]
struct Knowledge {
    subnets: u8,
    ips: u16,
    /// Hosts port-scanned, and the ports the last scan found.
    scanned: u16,
    ports: [u16; N],
    /// Hostnames learnt (from a shell's system info).
    hostnames: u16,
    /// The operational service's name, learnt by escalating on its server.
    ot_service: bool,
}

/// B_line's position in its kill chain and the choices it made.
#[derive(Clone, Copy, Debug, Default)]
struct BLine {
    step: usize,
    user_host: Option<usize>,
}

/// The chain's jump-back on a failure, by position (CybORG's `jumps`).
const B_LINE_JUMPS: [usize; 15] = [0, 1, 2, 2, 2, 2, 5, 5, 5, 5, 9, 9, 9, 12, 13];

/// Meander's bookkeeping (sets of hosts as masks; a host's address and name are one).
#[derive(Clone, Copy, Debug, Default)]
struct Meander {
    scanned_subnets: u8,
    scanned_ips: u16,
    exploited_ips: u16,
    escalated: u16,
    mapped: u16,
    last_host: Option<usize>,
    last_ip: Option<usize>,
}

/// One CAGE 2 game: the network, the attacker and the defender's table.
#[derive(Clone, Debug)]
pub struct Cage2 {
    red: Red,
    rng: Stream,
    shells: [Shells; N],
    /// Malware files left by exploits and escalations (until a restore).
    malware: u16,
    /// Ports where a decoy listens.
    decoys: [u16; N],
    ot_running: bool,
    know: Knowledge,
    b_line: BLine,
    meander: Meander,
    /// Whether red's last action worked (`None` before its first).
    last_success: Option<bool>,
    table: [Compromise; N],
    activity: [Activity; N],
    /// Hosts where the monitoring reported a new attacker process this step.
    alerts: u16,
    steps: u64,
}

impl Cage2 {
    /// A game against `red`, its attacker seeded from `seed`.
    pub fn new(red: Red, seed: u64) -> Cage2 {
        let mut shells = [Shells::default(); N];
        shells[USER0].root = 1; // the phishing foothold CAGE 2 starts red with
        Cage2 {
            red,
            rng: Stream::new(seed, StreamId::Attacker),
            shells,
            malware: 0,
            decoys: [0; N],
            ot_running: true,
            know: Knowledge {
                subnets: 1 << Subnet::User as u8,
                ips: 1 << USER0,
                scanned: 0,
                ports: [0; N],
                hostnames: 1 << USER0,
                ot_service: false,
            },
            b_line: BLine::default(),
            meander: Meander::default(),
            last_success: None,
            table: [Compromise::No; N],
            activity: [Activity::None; N],
            alerts: 0,
            steps: 0,
        }
    }

    /// The attacker.
    pub fn red(&self) -> Red {
        self.red
    }

    /// Steps played.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One step: the defender's action `a` (an index below [`BLUE_ACTIONS`]; anything
    /// else is a sleep), then the attacker's.
    pub fn step(&mut self, a: usize) -> Outcomes {
        self.steps += 1;
        let blue = BlueAction::decode(a).unwrap_or(BlueAction::Sleep);
        let mut events = [Events::default(); N];
        let mut cost = 0;
        match blue {
            BlueAction::Sleep | BlueAction::Monitor => {}
            BlueAction::Analyse(h) => events[h].malware = self.malware & 1 << h != 0,
            BlueAction::Remove(h) => self.shells[h].user_known = 0,
            BlueAction::Decoy(d, h) => {
                let used = real_ports(h) | self.decoys[h];
                if d.fits(h) && used & bit(d.port()) == 0 {
                    self.decoys[h] |= bit(d.port());
                    events[h].items += 1;
                    events[h].first_is_service = true;
                }
            }
            BlueAction::Restore(h) => {
                cost = -10;
                self.shells[h] = Shells::default();
                if h == USER0 {
                    self.shells[h].root = 1;
                }
                self.malware &= !(1 << h);
                self.decoys[h] = 0;
                if h == OP_SERVER {
                    self.ot_running = true;
                }
            }
        }
        let red = self.red_action();
        let success = self.execute(red, &mut events);
        self.last_success = Some(success);

        // The reward, in tenths: CybORG rounds each part to one decimal.
        let confidentiality: i64 = -(0..N)
            .filter(|&h| self.shells[h].root > 0)
            .map(confidentiality_tenths)
            .sum::<i64>();
        let availability: i64 = if self.ot_running { 0 } else { -100 };
        self.observe(blue, &events);
        Outcomes {
            reward: (confidentiality + availability + cost) as f64 / 10.0,
            confidentiality: confidentiality as f64 / 10.0,
            availability: availability as f64 / 10.0,
            action_cost: cost as f64 / 10.0,
            red,
            red_success: success,
            footholds: self.beyond_entry(|s| s.any()),
            privileged: self.beyond_entry(|s| s.root > 0),
            blue_acted: !matches!(blue, BlueAction::Sleep | BlueAction::Monitor),
        }
    }

    /// Hosts but User0 whose shells pass `test`.
    fn beyond_entry(&self, test: impl Fn(&Shells) -> bool) -> u32 {
        let n = self.shells.iter().enumerate();
        n.filter(|&(h, s)| h != USER0 && test(s)).count() as u32
    }

    /// The defender's table as CybORG's `ChallengeWrapper` vector: per host (table
    /// order), activity `None [0,0]`, `Scan [1,0]`, `Exploit [1,1]`, then compromise
    /// `No [0,0]`, `Unknown [1,0]`, `User [0,1]`, `Privileged [1,1]`.
    pub fn observation(&self, out: &mut [f32]) {
        for h in 0..N {
            let a = match self.activity[h] {
                Activity::None => [0.0, 0.0],
                Activity::Scan => [1.0, 0.0],
                Activity::Exploit => [1.0, 1.0],
            };
            let c = match self.table[h] {
                Compromise::No => [0.0, 0.0],
                Compromise::Unknown => [1.0, 0.0],
                Compromise::User => [0.0, 1.0],
                Compromise::Privileged => [1.0, 1.0],
            };
            out[h * 4..h * 4 + 4].copy_from_slice(&[a[0], a[1], c[0], c[1]]);
        }
    }

    /// Whether defender action `a` can change anything now: every action is legal,
    /// as in CAGE 2, but a decoy on an occupied port or the wrong system fails.
    pub fn useful(&self, a: usize) -> bool {
        match BlueAction::decode(a) {
            Some(BlueAction::Decoy(d, h)) => self.decoy_fits(d, h),
            Some(_) => true,
            None => false,
        }
    }

    /// [`Cage2::useful`] for every action, written into `mask` (`BLUE_ACTIONS` long).
    pub fn write_mask(&self, mask: &mut [bool]) {
        mask.fill(true);
        for (k, d) in DECOYS.into_iter().enumerate() {
            for h in 0..N {
                mask[2 + (2 + k) * N + h] = self.decoy_fits(d, h);
            }
        }
    }

    fn decoy_fits(&self, d: Decoy, h: usize) -> bool {
        d.fits(h) && (real_ports(h) | self.decoys[h]) & bit(d.port()) == 0
    }

    /// The table's activity column this step.
    pub fn activity(&self) -> &[Activity; N] {
        &self.activity
    }

    /// Hosts where the monitoring reported a new attacker process (with its process ID)
    /// this step: what CybORG's raw observation shows its scripted defenders, and the
    /// table does not separate from an SSH login.
    pub fn alerts(&self) -> [bool; N] {
        std::array::from_fn(|h| self.alerts & 1 << h != 0)
    }

    /// The table's compromise column.
    pub fn table(&self) -> &[Compromise; N] {
        &self.table
    }

    /// The hidden truth: hosts where red has a shell, and where it is privileged.
    pub fn truth(&self) -> ([bool; N], [bool; N]) {
        (
            self.shells.map(|s| s.any()),
            self.shells.map(|s| s.root > 0),
        )
    }

    /// Whether the operational service runs.
    pub fn ot_running(&self) -> bool {
        self.ot_running
    }

    /// CybORG's `BlueTableWrapper`: the last action's bookkeeping, then this step's
    /// anomalies.
    fn observe(&mut self, blue: BlueAction, events: &[Events; N]) {
        match blue {
            BlueAction::Restore(h) => self.table[h] = Compromise::No,
            BlueAction::Remove(h) if self.table[h] != Compromise::No => {
                self.table[h] = Compromise::Unknown
            }
            _ => {}
        }
        self.alerts = 0;
        for (h, e) in events.iter().enumerate() {
            self.alerts |= (e.reverse_shell as u16) << h;
            self.activity[h] = e.activity().unwrap_or(Activity::None);
            if self.activity[h] == Activity::Exploit {
                self.table[h] = Compromise::User;
            }
            if e.malware {
                self.table[h] = Compromise::Privileged;
            }
        }
    }

    /// The attacker's next action, from its script and red's last success.
    fn red_action(&mut self) -> RedAction {
        match self.red {
            Red::Sleep => RedAction::Sleep,
            Red::BLine => self.b_line_action(),
            Red::Meander => self.meander_action(),
        }
    }

    fn b_line_action(&mut self) -> RedAction {
        let b = &mut self.b_line;
        match self.last_success {
            Some(true) => b.step = (b.step + 1).min(14),
            _ => b.step = B_LINE_JUMPS[b.step],
        }
        // The user host is drawn once, the first time the chain needs it; later
        // returns to that link reuse it (B_line caches its actions).
        let user = match b.user_host {
            Some(u) if b.step >= 1 => u,
            _ if b.step >= 1 => {
                let u = USER0 + 1 + self.rng.below(4);
                b.user_host = Some(u);
                u
            }
            _ => USER0,
        };
        // The Enterprise server whose address the user host reveals.
        let ent = if user <= USER0 + 2 { ENT1 } else { ENT0 };
        match b.step {
            0 => RedAction::DiscoverRemoteSystems(Subnet::User as u8),
            1 => RedAction::DiscoverNetworkServices(user),
            2 => RedAction::ExploitRemoteService(user),
            3 => RedAction::PrivilegeEscalate(user),
            4 => RedAction::DiscoverNetworkServices(ent),
            5 => RedAction::ExploitRemoteService(ent),
            6 => RedAction::PrivilegeEscalate(ent),
            7 => RedAction::DiscoverRemoteSystems(Subnet::Enterprise as u8),
            8 => RedAction::DiscoverNetworkServices(ENT2),
            9 => RedAction::ExploitRemoteService(ENT2),
            10 => RedAction::PrivilegeEscalate(ENT2),
            11 => RedAction::DiscoverNetworkServices(OP_SERVER),
            12 => RedAction::ExploitRemoteService(OP_SERVER),
            13 => RedAction::PrivilegeEscalate(OP_SERVER),
            _ => RedAction::Impact(OP_SERVER),
        }
    }

    fn meander_action(&mut self) -> RedAction {
        let success = self.last_success.unwrap_or(false);
        let m = &mut self.meander;
        // What the last action taught it.
        if let Some(ip) = m.last_ip.take() {
            if success {
                m.mapped |= 1 << ip;
            } else {
                m.exploited_ips &= !(1 << ip);
                // Losing a foothold makes it redo the deepest zone it escalated in.
                let op = m.escalated & (0b1111 << 4);
                let ent = m.escalated & (0b111 << ENT0);
                let redo = if op != 0 { op } else { ent };
                m.escalated &= !redo;
                m.exploited_ips &= !(redo & m.mapped);
            }
        }
        if let Some(h) = m.last_host.take()
            && !success
        {
            m.escalated &= !(1 << h);
            if m.mapped & 1 << h != 0 {
                m.exploited_ips &= !(1 << h);
            }
        }
        if m.escalated & 1 << OP_SERVER != 0 {
            m.last_host = Some(OP_SERVER);
            return RedAction::Impact(OP_SERVER);
        }
        for s in [Subnet::User, Subnet::Enterprise, Subnet::Operational] {
            let b = 1 << s as u8;
            if self.know.subnets & b != 0 && m.scanned_subnets & b == 0 {
                m.scanned_subnets |= b;
                return RedAction::DiscoverRemoteSystems(s as u8);
            }
        }
        let ips = self.know.ips;
        if let Some(ip) = pick(&mut self.rng, ips & !m.scanned_ips) {
            m.scanned_ips |= 1 << ip;
            return RedAction::DiscoverNetworkServices(ip);
        }
        let escalable = (0..N).fold(0u16, |acc, h| {
            let ok = self.know.hostnames & 1 << h != 0
                && m.escalated & 1 << h == 0
                && (m.mapped & 1 << h == 0 || m.exploited_ips & 1 << h != 0);
            acc | (ok as u16) << h
        });
        if let Some(h) = pick(&mut self.rng, escalable) {
            m.escalated |= 1 << h;
            m.last_host = Some(h);
            return RedAction::PrivilegeEscalate(h);
        }
        if let Some(ip) = pick(&mut self.rng, ips & !m.exploited_ips) {
            m.exploited_ips |= 1 << ip;
            m.last_ip = Some(ip);
            return RedAction::ExploitRemoteService(ip);
        }
        // CybORG's Meander raises here ("run out of options"); it cannot happen while
        // an exploit fails somewhere, and sleeping is the harmless reading.
        RedAction::Sleep
    }

    /// Carries out a red action; whether it worked.
    fn execute(&mut self, red: RedAction, events: &mut [Events; N]) -> bool {
        match red {
            RedAction::Sleep => true,
            RedAction::DiscoverRemoteSystems(s) => {
                let s = [Subnet::User, Subnet::Enterprise, Subnet::Operational][s as usize];
                self.know.ips |= subnet_hosts(s);
                true
            }
            RedAction::DiscoverNetworkServices(h) => {
                let mut ports = 0;
                for &p in listening(h) {
                    events[h].connection(p);
                    ports |= bit(p);
                }
                for d in DECOYS {
                    if self.decoys[h] & bit(d.port()) != 0 && ports & bit(d.port()) == 0 {
                        events[h].connection(d.port());
                        ports |= bit(d.port());
                    }
                }
                self.know.ips |= 1 << h;
                self.know.scanned |= 1 << h;
                self.know.ports[h] = ports;
                true
            }
            RedAction::ExploitRemoteService(h) => self.exploit(h, &mut events[h]),
            RedAction::PrivilegeEscalate(h) => self.escalate(h),
            RedAction::Impact(h) => {
                let ok = self.shells[h].root > 0 && self.know.ot_service && h == OP_SERVER;
                if ok {
                    self.ot_running = false;
                }
                ok
            }
        }
    }

    /// `ExploitRemoteService`: pick an exploit from the last scan's ports (the most
    /// preferred with probability 0.75, else one of the others at random), then try
    /// it on what listens there now.
    fn exploit(&mut self, h: usize, ev: &mut Events) -> bool {
        if self.know.scanned & 1 << h == 0 {
            return false;
        }
        let ports = self.know.ports[h];
        let mut offered = [SshBruteForce; 8];
        let mut n = 0;
        for e in EXPLOITS {
            if e.offered(ports) {
                offered[n] = e;
                n += 1;
            }
        }
        let chosen = match n {
            0 => return false,
            1 => offered[0],
            _ => {
                let offered = &mut offered[..n];
                let top = (0..n)
                    .max_by(|&a, &b| offered[a].weight().total_cmp(&offered[b].weight()))
                    .unwrap_or(0);
                offered.swap(0, top);
                let other = offered[1 + self.rng.below(n - 1)];
                if self.rng.unit() < 0.75 {
                    offered[0]
                } else {
                    other
                }
            }
        };
        let port = chosen.port();
        let decoy = self.decoys[h] & bit(port) != 0;
        let outcome = if decoy {
            Outcome::NotVulnerable
        } else {
            outcome(h, chosen)
        };
        if outcome == Outcome::NoProcess {
            return false;
        }
        if chosen == SshBruteForce {
            // Ten password guesses, each a connection to port 22, whatever comes of
            // them; a login is one more. No process ID is reported: a remove cannot
            // find the shell.
            for _ in 0..10 {
                ev.connection(port);
            }
            if outcome == Outcome::NotVulnerable {
                return false;
            }
            ev.connection(port);
            self.shells[h].user_unknown += 1;
        } else {
            ev.connection(port);
            if decoy {
                // The decoy answers, is seen, and the exploit fails.
                ev.connection(port);
                return false;
            }
            if outcome == Outcome::NotVulnerable {
                return false;
            }
            // The reverse shell: the monitoring reports it, with its process ID, 95 %
            // of the time.
            let seen = self.rng.unit() < 0.95;
            if seen {
                ev.items += 1;
                ev.ephemeral += 1;
                ev.reverse_shell = true;
            }
            let s = &mut self.shells[h];
            match (outcome == Outcome::Privileged, seen) {
                (true, _) => s.root += 1,
                (false, true) => s.user_known += 1,
                (false, false) => s.user_unknown += 1,
            }
        }
        self.malware |= 1 << h;
        self.know.hostnames |= 1 << h;
        true
    }

    /// `PrivilegeEscalate`: root on a host where red has a shell, then what the host
    /// knows of its neighbours.
    fn escalate(&mut self, h: usize) -> bool {
        let s = &mut self.shells[h];
        if !s.any() {
            return false;
        }
        if s.root == 0 {
            // One of the shells, at random, becomes root.
            let k = self.rng.below((s.user_known + s.user_unknown) as usize);
            if k < s.user_known as usize {
                s.user_known -= 1;
            } else {
                s.user_unknown -= 1;
            }
            s.root += 1;
            self.malware |= 1 << h;
        }
        // What exploring the host reveals (the scenario's `info` of each host).
        self.know.ips |= 1 << h;
        self.know.subnets |= 1 << subnet(h) as u8;
        match h {
            9 | 10 => self.know.ips |= 1 << ENT1,
            11 | 12 => self.know.ips |= 1 << ENT0,
            ENT2 => self.know.ips |= 1 << OP_SERVER,
            OP_SERVER => self.know.ot_service = true,
            _ => {}
        }
        true
    }
}

/// One of the hosts in `mask` at random (uniform), or `None` where it is empty.
fn pick(rng: &mut Stream, mask: u16) -> Option<usize> {
    let n = mask.count_ones() as usize;
    if n == 0 {
        return None;
    }
    let mut k = rng.below(n);
    (0..N).find(|&h| {
        if mask & 1 << h == 0 {
            return false;
        }
        if k == 0 {
            return true;
        }
        k -= 1;
        false
    })
}

/// A host's confidentiality value in tenths (CAGE 2: Enterprise and the operational
/// server Medium = 1; User0 None = 0; the rest unset, which CybORG reads as Low = 0.1).
fn confidentiality_tenths(h: usize) -> i64 {
    match h {
        ENT0 | ENT1 | ENT2 | OP_SERVER => 10,
        USER0 => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play(red: Red, seed: u64, steps: usize, mut blue: impl FnMut(&Cage2) -> usize) -> f64 {
        let mut g = Cage2::new(red, seed);
        (0..steps).map(|_| g.step(blue(&g)).reward).sum()
    }

    #[test]
    fn actions_round_trip_through_their_indices() {
        for a in 0..BLUE_ACTIONS {
            assert_eq!(BlueAction::decode(a).unwrap().index(), a);
        }
        assert_eq!(BlueAction::decode(BLUE_ACTIONS), None);
        assert_eq!(
            BlueAction::decode(2 + 10 * 13 + 7),
            Some(BlueAction::Restore(OP_SERVER))
        );
        assert_eq!(
            BlueAction::decode(2 + 2 * 13 + 1),
            Some(BlueAction::Decoy(Decoy::Apache, ENT0))
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_game() {
        let a = play(Red::Meander, 5, 100, |g| {
            (g.steps() as usize * 7) % BLUE_ACTIONS
        });
        let b = play(Red::Meander, 5, 100, |g| {
            (g.steps() as usize * 7) % BLUE_ACTIONS
        });
        assert_eq!(a.to_bits(), b.to_bits());
    }

    #[test]
    fn b_line_reaches_the_server_along_its_chain_when_nobody_defends() {
        let mut g = Cage2::new(Red::BLine, 3);
        let mut kinds = vec![];
        while g.ot_running() && g.steps() < 100 {
            kinds.push(g.step(0).red);
        }
        assert!(!g.ot_running(), "no impact in 100 steps");
        let (_, root) = g.truth();
        assert!(root[OP_SERVER] && root[ENT2]);
        assert_eq!(kinds[0], RedAction::DiscoverRemoteSystems(0));
        assert!(matches!(kinds.last(), Some(RedAction::Impact(OP_SERVER))));
        // Once impacted, every step costs the server's availability and the hosts held.
        let o = g.step(0);
        assert_eq!(o.availability, -10.0);
        assert!(o.confidentiality <= -3.0, "{o:?}");
    }

    #[test]
    fn a_restore_removes_every_foothold_but_the_phishing_one_and_costs_one() {
        let mut g = Cage2::new(Red::BLine, 3);
        while g.ot_running() {
            g.step(0);
        }
        let o = g.step(BlueAction::Restore(OP_SERVER).index());
        assert_eq!(o.action_cost, -1.0);
        // Red's impact this step fails: its shell there is gone.
        assert!(!o.red_success);
        assert!(g.ot_running());
        let o = g.step(BlueAction::Restore(USER0).index());
        let (any, root) = g.truth();
        assert!(any[USER0] && root[USER0], "the phishing foothold stays");
        assert!(o.blue_acted && o.privileged <= o.footholds);
    }

    #[test]
    fn a_remove_kills_seen_user_shells_only() {
        let mut g = Cage2::new(Red::Sleep, 0);
        g.shells[ENT1] = Shells {
            user_known: 1,
            user_unknown: 0,
            root: 0,
        };
        g.shells[ENT2] = Shells {
            user_known: 0,
            user_unknown: 1,
            root: 1,
        };
        g.step(BlueAction::Remove(ENT1).index());
        g.step(BlueAction::Remove(ENT2).index());
        let (any, _) = g.truth();
        assert!(!any[ENT1]);
        assert!(any[ENT2]);
    }

    #[test]
    fn the_mask_is_useful_action_by_action() {
        let mut g = Cage2::new(Red::Sleep, 0);
        g.step(BlueAction::Decoy(Decoy::Apache, ENT0).index());
        let mut mask = [false; BLUE_ACTIONS];
        g.write_mask(&mut mask);
        for (a, m) in mask.iter().enumerate() {
            assert_eq!(*m, g.useful(a), "{a}");
        }
        assert!(
            !mask[BlueAction::Decoy(Decoy::Vsftpd, ENT0).index()],
            "port 80 is taken now"
        );
    }

    #[test]
    fn a_decoy_needs_a_free_port_and_the_right_system() {
        let g = Cage2::new(Red::Sleep, 0);
        // Enterprise1 (Windows) already serves 80 and 22; it has no SMTP and no Linux.
        assert!(!g.useful(BlueAction::Decoy(Decoy::Apache, ENT1).index()));
        assert!(!g.useful(BlueAction::Decoy(Decoy::HarakaSmtp, ENT1).index()));
        assert!(g.useful(BlueAction::Decoy(Decoy::Femitter, ENT1).index()));
        // Enterprise0 (Linux, sshd only) takes Apache, not Femitter.
        assert!(g.useful(BlueAction::Decoy(Decoy::Apache, ENT0).index()));
        assert!(!g.useful(BlueAction::Decoy(Decoy::Femitter, ENT0).index()));
    }

    #[test]
    fn the_table_reads_scans_and_exploits_as_the_wrapper_does() {
        let mut scan = Events::default();
        for p in [P22, P80, P443] {
            scan.connection(p);
        }
        assert_eq!(scan.activity(), Some(Activity::Scan));
        let mut single = Events::default();
        single.connection(P22);
        assert_eq!(single.activity(), Some(Activity::Scan));
        let mut shell = Events::default();
        shell.connection(P21);
        shell.items += 1;
        shell.ephemeral += 1;
        shell.reverse_shell = true;
        assert_eq!(shell.activity(), Some(Activity::Exploit));
        assert_eq!(Events::default().activity(), None);
    }
}
