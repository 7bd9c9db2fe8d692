//! `unattended-youtube`: the `unattended` command line with the `youtube` engine alone (`run`,
//! `once TASK`, `status`, `check`, `reset`; exit codes as `unattended`'s).

fn main() -> std::process::ExitCode {
    unattended_cli::main(unattended_engine_youtube::kinds())
}
