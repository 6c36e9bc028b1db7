//! A program run by `blockyard run`: its stdout and stderr passed through a [`Masker`]
//! as they stream (on pseudo-terminals when Blockyard's own are terminals, so the
//! program still sees a terminal: its colours and line buffering stay), SIGINT, SIGTERM
//! and SIGHUP passed on to it, stopped with a grace period before a kill, and its exit
//! code answered as a shell's (128 + the signal that ended it).

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::mask::Masker;

/// The program's output streams.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// The running program and the threads passing its output on.
pub struct Child {
    inner: std::process::Child,
    pumps: Vec<JoinHandle<()>>,
}

/// Signals Blockyard received while a program ran: each is passed on to the program
/// running at the time. Once one arrives, the program is not started again.
pub struct Signals {
    pid: Arc<AtomicI32>,
    received: Arc<AtomicBool>,
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl Signals {
    pub fn forward() -> io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        let handle = signals.handle();
        let pid = Arc::new(AtomicI32::new(0));
        let received = Arc::new(AtomicBool::new(false));
        let (to, seen) = (pid.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            for signal in signals.forever() {
                seen.store(true, Ordering::SeqCst);
                let target = rustix::process::Pid::from_raw(to.load(Ordering::SeqCst));
                let signal = rustix::process::Signal::from_named_raw(signal);
                if let (Some(target), Some(signal)) = (target, signal) {
                    let _ = rustix::process::kill_process(target, signal);
                }
            }
        });
        Ok(Signals {
            pid,
            received,
            handle,
            thread: Some(thread),
        })
    }

    /// Whether SIGINT, SIGTERM or SIGHUP arrived.
    pub fn received(&self) -> bool {
        self.received.load(Ordering::SeqCst)
    }

    fn follow(&self, child: &Child) {
        self.pid.store(child.inner.id() as i32, Ordering::SeqCst);
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts `command` with its output masked by `masker` (`None`: passed on untouched).
pub fn spawn(
    mut command: Command,
    masker: Option<Arc<Masker>>,
    signals: &Signals,
) -> io::Result<Child> {
    let Some(masker) = masker.filter(|m| !m.is_empty()) else {
        let child = Child {
            inner: command.spawn()?,
            pumps: Vec::new(),
        };
        signals.follow(&child);
        return Ok(child);
    };
    let mut masters = Vec::new();
    for stream in [Stream::Stdout, Stream::Stderr] {
        match terminal_pair(stream)? {
            Some((master, slave)) => {
                set_output(&mut command, stream, Stdio::from(slave));
                masters.push((stream, Some(master)));
            }
            None => {
                set_output(&mut command, stream, Stdio::piped());
                masters.push((stream, None));
            }
        }
    }
    let mut inner = command.spawn()?;
    // The slaves' copies were in `command`, dropped with it: the masters see the end
    // of output once the program (and what it started) closes them.
    drop(command);
    let order = Arc::new(Mutex::new(()));
    let pumps = masters
        .into_iter()
        .map(|(stream, master)| {
            let source: Box<dyn Read + Send> = match (master, stream) {
                (Some(master), _) => Box::new(std::fs::File::from(master)),
                (None, Stream::Stdout) => Box::new(inner.stdout.take().expect("piped")),
                (None, Stream::Stderr) => Box::new(inner.stderr.take().expect("piped")),
            };
            let (masker, order) = (masker.clone(), order.clone());
            std::thread::spawn(move || pump(source, stream, &masker, &order))
        })
        .collect();
    let child = Child { inner, pumps };
    signals.follow(&child);
    Ok(child)
}

fn set_output(command: &mut Command, stream: Stream, to: Stdio) {
    match stream {
        Stream::Stdout => command.stdout(to),
        Stream::Stderr => command.stderr(to),
    };
}

/// A pseudo-terminal for `stream` if Blockyard's own is a terminal: its master (read
/// by Blockyard) and its slave (the program's output), raw so that bytes pass as
/// written, and as wide as Blockyard's terminal.
fn terminal_pair(stream: Stream) -> io::Result<Option<(OwnedFd, OwnedFd)>> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use rustix::termios::{OptionalActions, tcgetattr, tcgetwinsize, tcsetattr, tcsetwinsize};
    let ours = match stream {
        Stream::Stdout => rustix::stdio::stdout(),
        Stream::Stderr => rustix::stdio::stderr(),
    };
    if !rustix::termios::isatty(ours) {
        return Ok(None);
    }
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let path = ptsname(&master, Vec::new())?;
    let flags = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY;
    let slave = rustix::fs::open(path.as_c_str(), flags, rustix::fs::Mode::empty())?;
    let mut raw = tcgetattr(&slave)?;
    raw.make_raw();
    tcsetattr(&slave, OptionalActions::Now, &raw)?;
    if let Ok(size) = tcgetwinsize(ours) {
        let _ = tcsetwinsize(&slave, size);
    }
    Ok(Some((master, slave)))
}

/// Passes one output stream on, masked, until it ends (a pseudo-terminal's master
/// reads EIO once every slave is closed).
fn pump(mut source: Box<dyn Read + Send>, stream: Stream, masker: &Masker, order: &Mutex<()>) {
    let mut state = masker.stream();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(buf.len() + 64);
    let mut open = true;
    loop {
        out.clear();
        match source.read(&mut buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Ok(n) if n > 0 => state.push(&buf[..n], &mut out),
            _ => {
                state.finish(&mut out);
                open = false;
            }
        }
        if !out.is_empty() {
            let _held = order.lock();
            // A closed output (a reader gone) drops what follows, as a pipe would.
            let _ = match stream {
                Stream::Stdout => write_all(&mut io::stdout().lock(), &out),
                Stream::Stderr => write_all(&mut io::stderr().lock(), &out),
            };
        }
        if !open {
            return;
        }
    }
}

fn write_all(to: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    to.write_all(bytes)?;
    to.flush()
}

/// Runs `command` to its end, its output untouched, passing SIGINT, SIGTERM and SIGHUP
/// on to it; its exit code (for work that must follow it, as `exec --lease`'s
/// revocation).
pub fn run_forwarding(command: Command) -> io::Result<i32> {
    let signals = Signals::forward()?;
    spawn(command, None, &signals)?.wait()
}

impl Child {
    /// Its exit code, if it has ended.
    pub fn try_wait(&mut self) -> io::Result<Option<i32>> {
        Ok(self.inner.try_wait()?.map(exit_code))
    }

    /// Waits for it to end and for its output to be passed on; its exit code.
    pub fn wait(mut self) -> io::Result<i32> {
        let status = self.inner.wait()?;
        for pump in self.pumps.drain(..) {
            let _ = pump.join();
        }
        Ok(exit_code(status))
    }

    /// SIGTERM, then `grace` to end before SIGKILL; its exit code. Its output is
    /// passed on until it ends.
    pub fn stop(mut self, grace: Duration) -> io::Result<i32> {
        let pid = rustix::process::Pid::from_child(&self.inner);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.inner.try_wait()?.is_some() {
                return self.wait();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.inner.kill();
        self.wait()
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
