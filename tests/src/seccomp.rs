//! Refuses `io_uring_setup` in a child process (EPERM), as many container runtimes do,
//! so tests can check the node's automatic fall back to epoll.

use std::process::Command;

#[allow(unsafe_code)]
pub fn deny_io_uring_in_child(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe syscalls (prctl) on data it owns.
    unsafe {
        cmd.pre_exec(|| {
            install_filter();
            Ok(())
        });
    }
}

#[allow(unsafe_code)]
fn install_filter() {
    const SYS_IO_URING_SETUP: u32 = 425;
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut filter = [
        stmt(ld, 4), // seccomp_data.arch
        jeq(AUDIT_ARCH_X86_64, 1, 0),
        stmt(ret, RET_ALLOW),
        stmt(ld, 0), // seccomp_data.nr
        jeq(SYS_IO_URING_SETUP, 0, 1),
        stmt(ret, RET_ERRNO | libc::EPERM as u32),
        stmt(ret, RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with a valid, live filter program.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        );
    }
}
