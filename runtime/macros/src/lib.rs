//! Attribute macros for `pinwheel`: `#[pinwheel::main]` and `#[pinwheel::test]`.
//!
//! Use them through the re-exports `pinwheel::main` and `pinwheel::test`; this crate is an
//! implementation detail of `pinwheel` and its paths are not stable on their own.
//!
//! Both macros parse the function's signature only (the body is passed through untouched, so
//! a half-typed body still expands and IDEs keep working) and report mistakes spanned at the
//! offending token, while still emitting the function.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Lit, MetaNameValue, Signature, Token, Visibility};

/// The most worker threads a runtime can have (`pinwheel::MAX_WORKERS`).
const MAX_WORKERS: usize = 64;

/// Runs `async fn main` on a pinwheel runtime.
///
/// ```ignore
/// #[pinwheel::main]
/// async fn main() {
///     pinwheel::spawn(async { println!("hello from a worker") }).await.unwrap();
/// }
/// ```
///
/// Arguments: `flavor = "multi_thread"` (the default) or `"current_thread"` (the thread in
/// `block_on` is the only worker), `worker_threads = N` (1 to 64, multi-thread only; default:
/// `PINWHEEL_WORKER_THREADS` if set, else one per CPU), `start_paused = true` (current-thread
/// only: the clock starts paused, see `pinwheel::time::pause`), `tokio_context = true` (every
/// worker carries a tokio context it drives, see `pinwheel::Builder::tokio_context`; feature
/// `tokio-compat`) and `crate = "path"` (where `pinwheel` is, when it is re-exported under
/// another name). `main` may return a `Result`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), item.into()).into()
}

/// Runs an `async fn` test on a fresh pinwheel runtime: by default a current-thread runtime, as
/// tokio's `#[tokio::test]` (the test's thread is the only worker, so the order tasks run in
/// is the order they are woken, with no other thread racing them); with `worker_threads = N`
/// or `flavor = "multi_thread"`, a multi-thread runtime of N workers (default 2, or
/// `PINWHEEL_WORKER_THREADS`); `tokio_context = true` (a multi-thread runtime whose workers
/// each carry a tokio context, see `pinwheel::Builder::tokio_context`) likewise. It adds
/// `#[test]` itself, so do not add a second one. Works with `#[should_panic]` and with tests
/// returning `Result`.
///
/// ```ignore
/// #[pinwheel::test]
/// async fn adds() {
///     assert_eq!(pinwheel::spawn(async { 1 + 1 }).await.unwrap(), 2);
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[pinwheel::main]",
            Kind::Test => "#[pinwheel::test]",
        }
    }
}

/// The function, with its body kept as unparsed tokens.
struct ItemFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    body: TokenStream2,
}

impl Parse for ItemFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body: TokenStream2 = input.parse()?;
        Ok(ItemFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

struct Config {
    flavor: Option<(Flavor, Span)>,
    worker_threads: Option<usize>,
    start_paused: Option<(bool, Span)>,
    tokio_context: Option<(bool, Span)>,
    krate: TokenStream2,
}

/// Collects every error instead of stopping at the first, so one compile shows them all.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
}

fn parse_config(kind: Kind, args: TokenStream2, errors: &mut Errors) -> Config {
    let mut config = Config {
        flavor: None,
        worker_threads: None,
        start_paused: None,
        tokio_context: None,
        krate: quote!(::pinwheel),
    };
    let pairs = match Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args) {
        Ok(p) => p,
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                format!(
                    "{}: arguments are `name = value` pairs separated by commas, \
                     e.g. `worker_threads = 4, crate = \"my_reexport::pinwheel\"` ({e})",
                    kind.attr()
                ),
            ));
            return config;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for pair in pairs {
        let name = pair.path.to_token_stream().to_string().replace(' ', "");
        if seen.contains(&name) {
            errors.push(syn::Error::new_spanned(
                &pair.path,
                format!("{}: argument `{name}` is given twice", kind.attr()),
            ));
            continue;
        }
        seen.push(name.clone());
        match name.as_str() {
            "worker_threads" => match lit_int(&pair.value) {
                Some((n, _)) if (1..=MAX_WORKERS).contains(&n) => config.worker_threads = Some(n),
                Some((n, span)) => errors.push(syn::Error::new(
                    span,
                    format!(
                        "{}: `worker_threads = {n}` is out of range; a runtime has 1 to \
                         {MAX_WORKERS} worker threads",
                        kind.attr()
                    ),
                )),
                None => errors.push(syn::Error::new_spanned(
                    &pair.value,
                    format!(
                        "{}: `worker_threads` takes an integer literal, e.g. `worker_threads = 4`",
                        kind.attr()
                    ),
                )),
            },
            "flavor" => match &pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => match s.value().as_str() {
                    "current_thread" => config.flavor = Some((Flavor::CurrentThread, s.span())),
                    "multi_thread" => config.flavor = Some((Flavor::MultiThread, s.span())),
                    other => errors.push(syn::Error::new_spanned(
                        s,
                        format!(
                            "{}: `flavor = {other:?}` is not a flavor; use \"current_thread\" (the \
                             thread in block_on is the only worker) or \"multi_thread\"",
                            kind.attr()
                        ),
                    )),
                },
                other => errors.push(syn::Error::new_spanned(
                    other,
                    format!(
                        "{}: `flavor` takes a string literal, `flavor = \"current_thread\"` or \
                         `flavor = \"multi_thread\"`",
                        kind.attr()
                    ),
                )),
            },
            "start_paused" => match &pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => config.start_paused = Some((b.value, b.span())),
                other => errors.push(syn::Error::new_spanned(
                    other,
                    format!(
                        "{}: `start_paused` takes `true` or `false`",
                        kind.attr()
                    ),
                )),
            },
            "tokio_context" => match &pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => config.tokio_context = Some((b.value, b.span())),
                other => errors.push(syn::Error::new_spanned(
                    other,
                    format!(
                        "{}: `tokio_context` takes `true` or `false`",
                        kind.attr()
                    ),
                )),
            },
            "crate" => match &pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => match s.parse::<syn::Path>() {
                    Ok(path) => config.krate = path.into_token_stream(),
                    Err(_) => errors.push(syn::Error::new_spanned(
                        s,
                        format!(
                            "{}: `crate = {:?}` is not a path, e.g. `crate = \"my_reexport::pinwheel\"`",
                            kind.attr(),
                            s.value()
                        ),
                    )),
                },
                other => errors.push(syn::Error::new_spanned(
                    other,
                    format!(
                        "{}: `crate` takes a string literal naming a path, \
                         e.g. `crate = \"my_reexport::pinwheel\"`",
                        kind.attr()
                    ),
                )),
            },
            _ => errors.push(syn::Error::new_spanned(
                &pair.path,
                format!(
                    "{}: unknown argument `{name}`; the valid arguments are `flavor`, \
                     `worker_threads`, `start_paused`, `tokio_context` and `crate`",
                    kind.attr()
                ),
            )),
        }
    }
    if let (Some((Flavor::CurrentThread, span)), Some(_)) = (config.flavor, config.worker_threads) {
        errors.push(syn::Error::new(
            span,
            format!(
                "{}: `worker_threads` needs `flavor = \"multi_thread\"`: a current-thread \
                 runtime has one worker, the thread in block_on",
                kind.attr()
            ),
        ));
    }
    config
}

fn lit_int(e: &Expr) -> Option<(usize, Span)> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<usize>().ok().map(|n| (n, i.span())),
        _ => None,
    }
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let config = parse_config(kind, args, &mut errors);
    let mut item: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            // Not a function: say so, and hand the tokens back as they were.
            let msg = format!("{} goes on an `async fn`: {e}", kind.attr());
            let err = syn::Error::new(e.span(), msg).to_compile_error();
            return quote!(#err #item);
        }
    };

    let sig = &item.sig;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "{}: the `async` keyword is missing from the function declaration \
                 (write `async fn {}`)",
                kind.attr(),
                sig.ident
            ),
        ));
    }
    if !sig.inputs.is_empty() {
        let what = match kind {
            Kind::Main => "`main` takes no arguments",
            Kind::Test => "a test function takes no arguments",
        };
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!(
                "{}: {what}; read command-line arguments with `std::env::args()`",
                kind.attr()
            ),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!("{}: the function cannot be generic", kind.attr()),
        ));
    }
    if kind == Kind::Test {
        for attr in &item.attrs {
            if attr.path().is_ident("test") {
                errors.push(syn::Error::new_spanned(
                    attr,
                    "#[pinwheel::test]: a second `#[test]` attribute; #[pinwheel::test] already \
                     adds `#[test]`, remove this one",
                ));
            }
        }
        item.attrs.retain(|a| !a.path().is_ident("test"));
    }

    let krate = &config.krate;
    // The defaults are tokio's: a test runs on a current-thread runtime (unless it asks for
    // workers), `main` on a multi-thread one.
    // A tokio context per worker needs worker threads: it makes a test multi-thread too.
    let tokio_context = matches!(config.tokio_context, Some((true, _)));
    let flavor = match (config.flavor, config.worker_threads, kind) {
        (Some((f, _)), _, _) => f,
        (None, Some(_), _) | (None, None, Kind::Main) => Flavor::MultiThread,
        (None, None, Kind::Test) if tokio_context => Flavor::MultiThread,
        (None, None, Kind::Test) => Flavor::CurrentThread,
    };
    if let (Flavor::CurrentThread, Some((true, span))) = (flavor, config.tokio_context) {
        errors.push(syn::Error::new(
            span,
            format!(
                "{}: `tokio_context = true` needs a multi-thread runtime (its worker threads \
                 drive the tokio contexts); remove `flavor = \"current_thread\"`",
                kind.attr()
            ),
        ));
    }
    let tokio = if tokio_context && flavor == Flavor::MultiThread {
        quote!(.tokio_context(true))
    } else {
        quote!()
    };
    if let (Flavor::MultiThread, Some((true, span))) = (flavor, config.start_paused) {
        errors.push(syn::Error::new(
            span,
            format!(
                "{}: `start_paused = true` needs a current-thread runtime (`flavor = \
                 \"current_thread\"`, the default of #[pinwheel::test], without `worker_threads`)",
                kind.attr()
            ),
        ));
    }
    let paused = match config.start_paused {
        Some((true, _)) => quote!(.start_paused(true)),
        _ => quote!(),
    };
    let builder = match (flavor, config.worker_threads, kind) {
        (Flavor::CurrentThread, _, _) => quote!(#krate::Builder::new_current_thread()),
        (Flavor::MultiThread, Some(n), _) => {
            quote!(#krate::Builder::new_multi_thread().worker_threads(#n))
        }
        (Flavor::MultiThread, None, Kind::Test) => {
            quote!(#krate::Builder::new_multi_thread().fallback_worker_threads(2))
        }
        (Flavor::MultiThread, None, Kind::Main) => quote!(#krate::Builder::new_multi_thread()),
    };
    let attrs = &item.attrs;
    let vis = &item.vis;
    let mut sig = item.sig.clone();
    sig.asyncness = None;
    sig.inputs = Punctuated::new();
    sig.generics = syn::Generics::default();
    let body = &item.body;
    let body_span = body.span();
    // The body becomes an async block; its output is the function's return value, so `?` and
    // `Result` returns work unchanged.
    let output_ty = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let call = quote_spanned! {body_span=>
        {
            let body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #output_ty>> =
                ::core::pin::pin!(async #body);
            #builder
                #paused
                #tokio
                .build()
                .expect("failed to start the pinwheel runtime")
                .block_on(body)
        }
    };
    let test_attr = match kind {
        Kind::Test => quote!(#[::core::prelude::v1::test]),
        Kind::Main => quote!(),
    };
    let errors = errors.0.map(|e| e.to_compile_error());
    quote! {
        #errors
        #test_attr
        #(#attrs)*
        #vis #sig #call
    }
}
