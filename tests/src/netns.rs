//! A network namespace of a test's own, joined to the test's namespace by
//! veth pairs, so a process inside it (fcsink) can be cut off from what
//! listens on the other ends (a broker, the emulator) and joined again.
//!
//! Each link is a /30: the host end `10.X.Y.1` in the test's namespace, the
//! namespace end `10.X.Y.2`. A server bound to a link's
//! [`host_addr`](Link::host_addr) is reached from inside the namespace over
//! that link only, and from the test itself over loopback (the address is
//! local), so a [`cut`](Namespace::cut) parts only fcsink from it. A cut
//! takes the host end down: packets are dropped silently, with no reset and
//! no "unreachable", as in a real network partition. Needs root and
//! iproute2 (`ip`); every name is unique per process and link.
//!
//! ```no_run
//! let ns = fcsink_tests::netns::Namespace::new(1);
//! let broker_addr = ns.link(0).host_addr; // bind the broker here
//! ns.cut(0);
//! ns.heal(0);
//! ```

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Namespaces made by this process so far (for unique names and subnets).
static MADE: AtomicU32 = AtomicU32::new(0);

/// One veth pair between the test's namespace and the namespace.
#[derive(Debug, Clone)]
pub struct Link {
    /// The host end's interface name (in the test's namespace).
    host_if: String,
    /// The host end's address: bind servers here.
    pub host_addr: Ipv4Addr,
    /// The namespace end's address.
    pub ns_addr: Ipv4Addr,
}

/// A network namespace with its veth links, deleted when dropped.
pub struct Namespace {
    name: String,
    links: Vec<Link>,
}

impl Namespace {
    /// Creates a namespace with `links` veth links (at most 32) and its
    /// loopback up.
    ///
    /// # Panics
    ///
    /// When `ip` refuses (not root, no iproute2), with its message.
    pub fn new(links: u8) -> Namespace {
        assert!(links <= 32, "at most 32 links per namespace");
        let serial = MADE.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("fcsink-test-{pid}-{serial}");
        ip(&["netns", "add", &name]);
        let mut namespace = Namespace {
            name,
            links: Vec::new(),
        };
        namespace.exec_ip(&["link", "set", "lo", "up"]);
        // 10.(100 + pid % 100).(serial % 8 * 32 + link).0/30: distinct per
        // process (mostly) and per namespace and link.
        let second = 100 + (pid % 100) as u8;
        for index in 0..links {
            let third = (serial % 8) as u8 * 32 + index;
            let host_if = format!("fh{}n{serial}l{index}", pid % 100_000);
            let ns_if = format!("fn{}n{serial}l{index}", pid % 100_000);
            let host_addr = Ipv4Addr::new(10, second, third, 1);
            let ns_addr = Ipv4Addr::new(10, second, third, 2);
            ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ]);
            ip(&["link", "set", &ns_if, "netns", &namespace.name]);
            ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &host_if]);
            ip(&["link", "set", &host_if, "up"]);
            namespace.exec_ip(&["addr", "add", &format!("{ns_addr}/30"), "dev", &ns_if]);
            namespace.exec_ip(&["link", "set", &ns_if, "up"]);
            namespace.links.push(Link {
                host_if,
                host_addr,
                ns_addr,
            });
        }
        namespace
    }

    /// The namespace's name, for `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Link `index`.
    pub fn link(&self, index: usize) -> &Link {
        &self.links[index]
    }

    /// Parts the namespace from link `index`'s host end: packets either way
    /// are dropped until [`heal`](Namespace::heal).
    pub fn cut(&self, index: usize) {
        ip(&["link", "set", &self.links[index].host_if, "down"]);
    }

    /// Joins link `index` again (its connected route comes back with it).
    pub fn heal(&self, index: usize) {
        ip(&["link", "set", &self.links[index].host_if, "up"]);
    }

    fn exec_ip(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth ends inside it, and with
        // them their peers.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs `ip ARGS`, panicking with its message when it fails.
fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("run ip {}: {err} (iproute2 is needed)", args.join(" ")));
    assert!(
        output.status.success(),
        "ip {} failed (network namespaces need root): {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}
