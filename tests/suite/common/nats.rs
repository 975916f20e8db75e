//! A NATS server of one test's own: the pinned binary (`scripts/nats.sh` installs it in
//! `.tools/venv`) on a free loopback port, with its own store, to stop, kill, wipe and
//! start again while an app is connected to it.

use std::path::PathBuf;
use std::time::Duration;

use super::TempDir;

pub struct PrivateNats {
    port: u16,
    store: TempDir,
    user: Option<(String, String)>,
    server: Option<tokio::process::Child>,
}

/// A loopback port nothing listens on (at the moment of asking), below the kernel's
/// ephemeral range (32768 and up on Linux). A server killed and started again on its
/// port must find it free: one from the ephemeral range may meanwhile have become the
/// local end of some client's connection, and the restart would fail to bind.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher as _, RandomState};
    const FIRST: u16 = 20_000;
    const COUNT: u16 = 12_000;
    // A random start per call: tests run in processes of their own, and two that took
    // turns from one place would often ask for the same port.
    let start = RandomState::new().hash_one(std::time::Instant::now()) % u64::from(COUNT);
    (0..COUNT)
        .map(|step| FIRST + u16::try_from((start + u64::from(step)) % u64::from(COUNT)).unwrap())
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free loopback port below the ephemeral range")
}

fn binary() -> String {
    std::env::var("NATTER_TEST_NATS_SERVER").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/venv/bin/nats-server").into()
    })
}

impl PrivateNats {
    /// A server with JetStream on a free port, accepting anyone.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A server that accepts only `user` with `password`.
    pub async fn start_with(user: Option<(&str, &str)>) -> Self {
        let port = free_port();
        let store = TempDir(std::env::temp_dir().join(format!(
            "natter-test-nats-{}",
            uuid::Uuid::now_v7().simple()
        )));
        let mut nats = Self {
            port,
            store,
            user: user.map(|(u, p)| (u.to_owned(), p.to_owned())),
            server: None,
        };
        nats.start_again().await;
        nats
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of this server, with its credentials if it has a user.
    pub fn url(&self) -> String {
        self.url_on(self.port)
    }

    fn url_on(&self, port: u16) -> String {
        match &self.user {
            Some((user, password)) => format!("nats://{user}:{password}@127.0.0.1:{port}"),
            None => format!("nats://127.0.0.1:{port}"),
        }
    }

    pub fn store(&self) -> &PathBuf {
        &self.store.0
    }

    /// Starts the server again on its port, with whatever its store holds.
    pub async fn start_again(&mut self) {
        self.start_on(self.port).await;
    }

    /// Starts the server on `port`, with its store: a connected client (which knows
    /// only the usual port) stays disconnected meanwhile.
    pub async fn start_on(&mut self, port: u16) {
        assert!(self.server.is_none(), "the server is running");
        let binary = binary();
        assert!(
            std::path::Path::new(&binary).exists(),
            "the pinned nats-server is needed at {binary}; run scripts/nats.sh start"
        );
        let mut command = tokio::process::Command::new(&binary);
        command
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js"])
            .args(["--server_name", "natter-test"])
            .arg("-sd")
            .arg(&self.store.0);
        if let Some((user, password)) = &self.user {
            command.args(["--user", user, "--pass", password]);
        }
        let server = command
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.server = Some(server);
        wait_for_jetstream(&self.url_on(port)).await;
    }

    /// Stops the server cleanly (SIGTERM), as an operator's restart does.
    pub async fn stop(&mut self) {
        let mut server = self.server.take().expect("the server is not running");
        let pid = server.id().expect("the server has a pid");
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(20), server.wait())
            .await
            .expect("the server did not stop on SIGTERM")
            .unwrap();
    }

    /// Freezes the server (SIGSTOP): connections stay open, and nothing is answered.
    pub async fn pause(&self) {
        self.signal("-STOP").await;
    }

    /// Lets a frozen server go on (SIGCONT).
    pub async fn resume(&self) {
        self.signal("-CONT").await;
    }

    async fn signal(&self, signal: &str) {
        let pid = self.server.as_ref().and_then(|server| server.id());
        let pid = pid.expect("the server is not running").to_string();
        let status = tokio::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Kills the server (SIGKILL): no shutdown at all.
    pub async fn kill(&mut self) {
        let mut server = self.server.take().expect("the server is not running");
        server.kill().await.unwrap();
    }

    /// Empties the store: the next start is a server that never held anything.
    pub fn wipe(&self) {
        assert!(self.server.is_none(), "stop the server first");
        let _ = std::fs::remove_dir_all(&self.store.0);
    }
}

/// A three-node JetStream cluster of one test's own, on free loopback ports: nodes to
/// kill and start again while an app is connected to the others.
pub struct PrivateCluster {
    nodes: Vec<ClusterNode>,
}

struct ClusterNode {
    name: String,
    port: u16,
    route_port: u16,
    store: TempDir,
    server: Option<tokio::process::Child>,
}

impl PrivateCluster {
    pub async fn start() -> Self {
        let tag = uuid::Uuid::now_v7().simple().to_string();
        let nodes = (1..=3)
            .map(|n| ClusterNode {
                name: format!("n{n}"),
                port: free_port(),
                route_port: free_port(),
                store: TempDir(
                    std::env::temp_dir().join(format!("natter-test-cluster-{tag}-n{n}")),
                ),
                server: None,
            })
            .collect();
        let mut cluster = Self { nodes };
        for node in 0..3 {
            cluster.spawn(node);
        }
        for node in &cluster.nodes {
            wait_for_jetstream(&format!("nats://127.0.0.1:{}", node.port)).await;
        }
        cluster
    }

    /// Every node's URL, comma-separated, as `NATTER_NATS_URL` takes them.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, index: usize) {
        let routes = self
            .nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.route_port))
            .collect::<Vec<_>>()
            .join(",");
        let node = &mut self.nodes[index];
        assert!(node.server.is_none(), "node {} is running", node.name);
        let server = tokio::process::Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &node.port.to_string(), "-js"])
            .args(["--server_name", &node.name, "--cluster_name", "natter-test"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", node.route_port),
            ])
            .args(["--routes", &routes])
            .arg("-sd")
            .arg(&node.store.0)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        node.server = Some(server);
    }

    /// The index of the node named `name` (as stream info names a leader).
    pub fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .unwrap()
    }

    /// Kills node `index` (0, 1 or 2) with SIGKILL.
    pub async fn kill(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let mut server = node.server.take().expect("the node is not running");
        server.kill().await.unwrap();
    }

    /// Starts node `index` again with its store, and waits for it to answer.
    pub async fn start_again(&mut self, index: usize) {
        self.spawn(index);
        wait_for_jetstream(&format!("nats://127.0.0.1:{}", self.nodes[index].port)).await;
    }
}

/// Waits until the server at `url` answers JetStream requests.
async fn wait_for_jetstream(url: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(client) = super::connect(url).await
            && async_nats::jetstream::new(client)
                .query_account()
                .await
                .is_ok()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the NATS server at {url} did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
