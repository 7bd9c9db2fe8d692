//! `unattended-scrape`: the runner's command line with the `scrape` engine.

fn main() -> std::process::ExitCode {
    unattended_cli::main(unattended_engine_scrape::kinds())
}
