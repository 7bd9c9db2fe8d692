//! `unattended-email`: the runner with the email engine alone.

fn main() -> std::process::ExitCode {
    unattended_cli::main(unattended_engine_email::kinds())
}
