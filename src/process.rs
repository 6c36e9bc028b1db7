//! Keeping opened secrets out of core dumps: the process is made non-dumpable (Linux
//! `PR_SET_DUMPABLE`, which also keeps other processes of the same user from reading
//! its memory through ptrace or `/proc`), and its core size limit is set to zero. And
//! room for a server's connections: its open-file limit raised to what it may be.

/// Protects this process's memory from core dumps. With `children_dump`, the core
/// size limit is left alone, so a program started by `blockyard exec` (which
/// inherits the limit, but not the non-dumpable flag) can still dump core.
pub fn protect_memory(children_dump: bool) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{DumpableBehavior, Resource, Rlimit, getrlimit, setrlimit};
        // Best effort: a failure leaves the process as it was, and says nothing.
        let _ = rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable);
        if !children_dump {
            let hard = getrlimit(Resource::Core).maximum;
            let _ = setrlimit(
                Resource::Core,
                Rlimit {
                    current: Some(0),
                    maximum: hard,
                },
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = children_dump;
}

/// Raises the open-file limit to its hard maximum (a server's every connection is a
/// file: with the common soft limit of 1,024, about a thousand idle sockets left no
/// room to answer `/health`). Answers the limit now in force, if known.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let wanted = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => limit.maximum,
            Err(_) => limit.current,
        }
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_open_file_limit_is_raised_to_its_maximum() {
        let now = super::raise_open_file_limit();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now, limit.current);
        assert_eq!(limit.current, limit.maximum);
    }

    #[test]
    fn the_process_cannot_dump_core() {
        super::protect_memory(false);
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
        let core = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!(core.current, Some(0));
    }
}
