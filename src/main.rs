//! The `unattended` command: the runner with the workspace's engines, and `demo` and
//! `simulate` to watch them heal themselves against local mocks.

fn main() -> std::process::ExitCode {
    unattended_cli::main_with::<unattended_demo::Command>(unattended::engines())
}
