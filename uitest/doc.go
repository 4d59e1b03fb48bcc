// Package uitest drives the web console of the Flag API server
// (flagserver/console) in a real headless Chromium through the Chrome
// DevTools Protocol (github.com/chromedp/chromedp). It is a module of its
// own so that neither the SDK nor the server module depends on chromedp.
//
// The test finds Chromium on the PATH (chromium, chromium-browser,
// google-chrome); without it the test is skipped, or fails when CI=true.
// Accessibility is checked with axe-core, read from the file named by
// FLAGWIRE_AXE_JS (CI installs it from npm); without it that check is
// skipped, or fails when CI=true. Screenshots of every page are written to
// FLAGWIRE_UI_SCREENSHOTS when it is set, else to a temporary directory.
package uitest
