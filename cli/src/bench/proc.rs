//! What Linux's `/proc` tells about a process — CPU time, resident memory,
//! open-file limit — for the server (`--server-pid`) and the bench itself;
//! and raising the bench's own open-file limit.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A process to read.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    /// The bench itself.
    Bench,
    /// Another process of this machine.
    Pid(u32),
}

impl Process {
    fn file(self, name: &str) -> PathBuf {
        let dir = match self {
            Process::Bench => "self".to_owned(),
            Process::Pid(pid) => pid.to_string(),
        };
        PathBuf::from("/proc").join(dir).join(name)
    }
}

/// A process's CPU time (user + system) and resident memory at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    pub rss_kib: u64,
}

/// Reads `process`'s usage now.
pub fn usage(process: Process) -> io::Result<Usage> {
    let stat = std::fs::read_to_string(process.file("stat"))?;
    let status = std::fs::read_to_string(process.file("status"))?;
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let ticks = cpu_ticks(&stat).ok_or_else(|| invalid("unreadable /proc/…/stat"))?;
    let rss_kib = rss_kib(&status).ok_or_else(|| invalid("no VmRSS in /proc/…/status"))?;
    Ok(Usage {
        cpu: Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64),
        rss_kib,
    })
}

/// utime + stime, in clock ticks, from the text of `/proc/PID/stat`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: count fields from the last ')'. After it come
    // field 3 (state) onwards; utime and stime are fields 14 and 15.
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` (KiB) from the text of `/proc/PID/status`.
fn rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The kernel's clock ticks per second (`USER_HZ`), the unit of
/// `/proc/PID/stat`'s times: `AT_CLKTCK` in this process's auxiliary
/// vector, else 100 (its value on every common Linux architecture).
fn clock_ticks_per_second() -> u64 {
    const AT_CLKTCK: usize = 17;
    const WORD: usize = size_of::<usize>();
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 100;
    };
    auxv.chunks_exact(2 * WORD)
        .find_map(|entry| {
            let (key, value) = entry.split_at(WORD);
            let key = usize::from_ne_bytes(key.try_into().ok()?);
            let value = usize::from_ne_bytes(value.try_into().ok()?);
            if key == AT_CLKTCK {
                u64::try_from(value).ok()
            } else {
                None
            }
        })
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// The soft open-file limit of `process`, from `/proc/PID/limits`.
pub fn open_file_limit(process: Process) -> Option<u64> {
    let limits = std::fs::read_to_string(process.file("limits")).ok()?;
    soft_open_files(&limits)
}

fn soft_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        number => number.parse().ok(),
    }
}

/// Raises this process's soft open-file limit as far as the hard limit
/// allows; returns the limit now in force.
pub fn raise_open_file_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 2603 0 0 0 \
                    731 269 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(1000));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn resident_memory_is_read_from_status() {
        let status = "Name:\tsyncscript\nVmPeak:\t  99 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n";
        assert_eq!(rss_kib(status), Some(51200));
        assert_eq!(rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn the_soft_open_file_limit_is_the_first_number() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95000                95000                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(soft_open_files(limits), Some(1024));
    }

    #[test]
    fn this_process_can_be_read() {
        let usage = usage(Process::Bench).unwrap();
        assert!(usage.rss_kib > 0);
        assert!(clock_ticks_per_second() > 0);
    }
}
