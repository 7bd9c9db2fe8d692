//! `unattended-blog`: the `unattended` command with the `blog` engine alone.

fn main() -> std::process::ExitCode {
    unattended_cli::main(unattended_engine_blog::kinds())
}
