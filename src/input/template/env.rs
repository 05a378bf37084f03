//! The Jinja2 environment, configured as Ansible configures its own.

use std::sync::OnceLock;

use minijinja::{
    Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value, syntax::SyntaxConfig,
};

use super::{chain, filters, lookups, methods, mutable, native, omit};

/// The work one render may do: 16 million instructions, or about 1 GiB of values and text
/// (minijinja's fuel: one unit an instruction, one per 64 bytes). lbctl's own haproxy.cfg for
/// 20,000 backends of 5 servers (bench/render-scale) renders within half of it.
pub const FUEL: u64 = 16_000_000;

/// A Jinja2 environment as Ansible sets one up: `trim_blocks`, undefined values an error
/// that names them (in release builds too), `None` printed as nothing and other values as
/// Python prints them (`True`, `['a', 'b']`), Ansible's filters and tests. lbctl's renderer
/// adds its templates to one; variables are evaluated in another just like it.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Every render (a variable, a template for one host) has a budget: about one unit per
    // instruction and per 64 bytes it creates, paid before a large value is made. A template
    // that would loop or grow text without end (`('a' * 1000).replace('', 'x' * 10 ** 8)`)
    // fails with "out of fuel" instead of taking the machine's memory.
    env.set_fuel(Some(FUEL));
    env.set_debug(true);
    // minijinja's `debug()` prints the whole context, `hostvars` included, host after host:
    // no Ansible function, and a template calling it would walk every variable of the
    // inventory. Ansible says `'debug' is undefined`; so does lbctl.
    env.remove_global("debug");
    env.add_global("omit", omit::value());
    env.set_formatter(format);
    // Python's methods on strings, lists and dicts (`'a,b'.split(',')`, `d.items()`), which
    // Ansible's templates use.
    env.set_unknown_method_callback(methods::unknown_method);
    filters::register(&mut env);
    lookups::register(&mut env);
    mutable::register(&mut env);
    // after the filters: `default` and `defined` as lookups through missing values need them
    chain::register(&mut env);
    env
}

/// The environment variables are evaluated in, made once per run.
pub(super) fn shared() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(environment)
}

/// Writes one `{{ }}` result. `None` writes nothing, as Ansible drops `None` nodes, and so
/// does `omit` (where a list or mapping printed drops its `omit` items); while a
/// variable is being evaluated, each result is also kept (`native`) so that a template that
/// is one expression gives its value rather than its text.
fn format(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    let printed;
    let text = match value.as_str() {
        Some(s) => s,
        // `omit` alone prints nothing, yet is a template's value when it is the only result
        None if omit::is_omit(value) => "",
        None => {
            filters::printable(value)?;
            printed = filters::printed(value);
            &printed
        }
    };
    if state.name() == native::NAME {
        state
            .get_or_insert_extension(native::Nodes::default())
            .push(value, text.len());
    }
    out.write_str(text)
        .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
}
