//! The panel's look: CSS custom properties from the widget's theme, light
//! and dark palettes, and the global rules of the iframe document.

use protocol::widget::{Theme, ThemeMode};
use stylist::css;
use stylist::yew::{Global, use_style};
use yew::prelude::*;

/// A colour palette, as CSS custom properties.
struct Palette {
    bg: &'static str,
    fg: &'static str,
    muted: &'static str,
    bubble: &'static str,
    border: &'static str,
    error_bg: &'static str,
    error_fg: &'static str,
    code: &'static str,
    /// Links on the bubble colour: the accent itself on light, lifted on dark.
    link: &'static str,
}

const LIGHT: Palette = Palette {
    bg: "#ffffff",
    fg: "#1f2328",
    muted: "#5b6470",
    bubble: "#f1f3f6",
    border: "#d9dde3",
    error_bg: "#fff1f0",
    error_fg: "#a4161a",
    code: "#f6f8fa",
    link: "var(--ph-primary)",
};

const DARK: Palette = Palette {
    bg: "#17191d",
    fg: "#e8eaed",
    muted: "#a3aab4",
    bubble: "#23272e",
    border: "#343a43",
    error_bg: "#3a1717",
    error_fg: "#ffb3b0",
    code: "#1f2329",
    link: "color-mix(in srgb, var(--ph-primary) 45%, #ffffff)",
};

/// Checked theme values (the server checks them too; this keeps a bad value
/// from ever reaching CSS).
fn safe(theme: &Theme) -> (String, String, u8) {
    let default = Theme::default();
    let primary = if theme.primary_is_valid() {
        &theme.primary
    } else {
        &default.primary
    };
    let font = if theme.font_is_valid() {
        &theme.font
    } else {
        &default.font
    };
    (primary.clone(), font.clone(), theme.radius.min(32))
}

#[derive(Properties, PartialEq, Debug)]
pub struct ThemeRootProps {
    pub theme: Theme,
    pub children: Children,
    #[prop_or_default]
    pub onkeydown: Callback<KeyboardEvent>,
}

/// The panel's outermost element: palettes and layout.
#[function_component(ThemeRoot)]
pub fn theme_root(props: &ThemeRootProps) -> Html {
    let (primary, font, radius) = safe(&props.theme);
    // `base` applies always; `dark` where the visitor prefers dark (the
    // same palette twice for a fixed mode).
    let (base, dark) = match props.theme.mode {
        ThemeMode::Light => (&LIGHT, &LIGHT),
        ThemeMode::Dark => (&DARK, &DARK),
        ThemeMode::Auto => (&LIGHT, &DARK),
    };
    let style = use_style!(
        r#"
        --ph-bg: ${bg}; --ph-fg: ${fg}; --ph-muted: ${muted}; --ph-bubble: ${bubble};
        --ph-border: ${border}; --ph-error-bg: ${error_bg}; --ph-error-fg: ${error_fg}; --ph-code: ${code};
        --ph-link: ${link};
        --ph-primary: ${primary};
        --ph-radius: ${radius}px;
        font-family: ${font};
        @media (prefers-color-scheme: dark) {
            --ph-bg: ${dbg}; --ph-fg: ${dfg}; --ph-muted: ${dmuted}; --ph-bubble: ${dbubble};
            --ph-border: ${dborder}; --ph-error-bg: ${derror_bg}; --ph-error-fg: ${derror_fg}; --ph-code: ${dcode};
            --ph-link: ${dlink};
        }
        background: var(--ph-bg);
        color: var(--ph-fg);
        height: 100%;
        min-width: 300px;
        display: flex;
        flex-direction: column;
        font-size: 15px;
        line-height: 1.45;
        "#,
        bg = base.bg,
        fg = base.fg,
        muted = base.muted,
        bubble = base.bubble,
        border = base.border,
        error_bg = base.error_bg,
        error_fg = base.error_fg,
        code = base.code,
        link = base.link,
        dbg = dark.bg,
        dfg = dark.fg,
        dmuted = dark.muted,
        dbubble = dark.bubble,
        dborder = dark.border,
        derror_bg = dark.error_bg,
        derror_fg = dark.error_fg,
        dcode = dark.code,
        dlink = dark.link,
        primary = primary,
        radius = radius,
        font = font,
    );
    let global = css!(
        r#"
        html, body { margin: 0; height: 100%; }
        body { overflow: hidden; }
        *, *::before, *::after { box-sizing: border-box; }
        :focus-visible { outline: 2px solid var(--ph-primary); outline-offset: 2px; }
        .sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        @media (prefers-reduced-motion: reduce) {
            *, *::before, *::after { animation: none !important; transition: none !important; scroll-behavior: auto !important; }
        }
        "#
    );
    html! {
        <div class={style} onkeydown={props.onkeydown.clone()}>
            <Global css={global} />
            { props.children.clone() }
        </div>
    }
}
