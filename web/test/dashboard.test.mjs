#!/usr/bin/env node
// End-to-end test of the dashboard against a running `pose serve`: a real browser adds a stream of a video, watches
// it live and waits for its reps, as a user would. Exit 0 on success; on failure it says what it waited for, what it
// saw and the browser's console errors, and exits 1.
//
//   POSE_URL=http://127.0.0.1:8400 VIDEO=/abs/squat.mp4 [POSE_TOKEN=...] [EXERCISE=squat] [REPS=3] \
//   [SCREENSHOT=/tmp/dashboard.png] [TIMEOUT_S=120] [CHROMIUM=/usr/bin/chromium] node web/test/dashboard.test.mjs
//
// The stream it adds is deleted at the end (KEEP_STREAM=1 keeps it).

import { chromium } from 'playwright-core';

const options = readOptions(process.env);
const startedMs = Date.now();
const deadlineMs = startedMs + options.timeoutS * 1000;

// Console errors before the token is entered are the page being refused reads (401) it then retries with the
// token: expected, and not held against the dashboard. Every other console error or page error fails the test.
const browserErrors = [];
let tokenEntered = !options.token;

class TestFailure extends Error {}

async function main() {
  log(`dashboard test: ${options.url}, ${options.exercise} x${options.reps} from ${options.video}`);
  let browser;
  let page;
  try {
    await waitForReadiness();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // A step (a click, say) that cannot happen fails within the test's time, not Playwright's default.
    page.setDefaultTimeout(Math.max(1000, deadlineMs - Date.now()));
    collectBrowserErrors(page);
    await runSteps(page);
    if (browserErrors.length > 0) throw new TestFailure('the browser reported errors while the test ran');
    log(`passed in ${elapsedS()} s; screenshot ${options.screenshot ?? '(none: set SCREENSHOT)'}`);
    return 0;
  } catch (error) {
    // Playwright's own errors (an element that never appeared) are failures of the dashboard too.
    console.error(`\nFAIL: ${error instanceof TestFailure ? error.message : error.stack}`);
    if (page) {
      console.error(`page state: ${JSON.stringify(await pageState(page).catch(() => 'unreadable'), null, 2)}`);
      await saveScreenshot(page, 'failure ');
    }
    console.error(browserErrors.length ? `browser errors:\n  ${browserErrors.join('\n  ')}` : 'browser errors: none');
    return 1;
  } finally {
    await browser?.close();
    if (!options.keepStream) await deleteStream();
  }
}

async function runSteps(page) {
  await page.goto(options.url, { waitUntil: 'domcontentloaded' });
  log('page loaded');

  if (options.token) {
    await page.getByTestId('token-input').fill(options.token);
    await page.getByTestId('token-save').click();
    tokenEntered = true;
    log('token entered');
  }

  await waitFor(`the exercise list to offer "${options.exercise}"`, () =>
    page.evaluate((exercise) => {
      const names = [...document.querySelectorAll('[data-testid=add-stream-exercise] option')].map((o) => o.value);
      return { done: names.includes(exercise), seen: `options: ${names.join(', ')}` };
    }, options.exercise),
  );
  await page.getByTestId('add-stream-source').fill(options.video);
  await page.getByTestId('add-stream-exercise').selectOption(options.exercise);
  await page.getByTestId('add-stream-id').fill(options.streamId);
  await page.getByTestId('add-stream-submit').click();
  await waitFor(`stream ${options.streamId} in the streams list`, () =>
    page.evaluate((streamId) => {
      const error = document.querySelector('[data-testid=add-stream-error]')?.textContent ?? '';
      // The API's refusal (a source outside the media folders, say) will not change: stop waiting.
      if (error) return { done: false, failed: true, seen: `the form says: ${error}` };
      const row = document.querySelector(`[data-testid=stream-row][data-stream-id="${streamId}"]`);
      return { done: row !== null, seen: row ? 'present' : 'not listed yet' };
    }, options.streamId),
  );
  log(`stream ${options.streamId} added`);

  await page
    .locator(`[data-testid=stream-row][data-stream-id="${options.streamId}"] [data-testid=stream-select]`)
    .click();
  log('stream selected');

  let endedAtMs = null;
  await waitFor(`a person's rep count to reach ${options.reps}`, async () => {
    const live = await page.evaluate(() => {
      const status = document.querySelector('[data-testid=live-status]:not([hidden])');
      return {
        counts: [...document.querySelectorAll('[data-testid=rep-count]')].map((e) => Number(e.textContent)),
        state: status?.dataset.state ?? null,
        status: status?.textContent ?? '',
      };
    });
    const seen = `rep counts [${live.counts.join(', ')}]${live.status ? `; ${live.status}` : ''}`;
    if (Math.max(0, ...live.counts) >= options.reps) return { done: true, seen };
    // A stream that ended has counted all it will, once its last messages are in: give those a few seconds.
    if (live.state === 'ended') endedAtMs ??= Date.now();
    const gaveUp = live.state === 'failed' || live.state === 'stopped' || Date.now() - (endedAtMs ?? Infinity) > 5000;
    return { done: false, failed: gaveUp, seen };
  });
  log('reps counted live');

  await waitFor(`${options.reps} rows in the history table`, () =>
    page.evaluate((reps) => {
      const rows = document.querySelectorAll('[data-testid=history-row]').length;
      return { done: rows >= reps, seen: `${rows} rows` };
    }, options.reps),
  );
  log('reps stored and listed');

  await waitFor('the live canvas to show a picture or a skeleton', () =>
    page.getByTestId('live-canvas').evaluate((canvas) => {
      const context = canvas.getContext('2d');
      const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
      // The most common color (5 bits a channel) is the background; a drawn frame leaves plenty of others.
      const counts = new Map();
      for (let i = 0; i < data.length; i += 4) {
        const key = ((data[i] >> 3) << 10) | ((data[i + 1] >> 3) << 5) | (data[i + 2] >> 3);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const background = Math.max(...counts.values());
      const pixels = data.length / 4;
      const drawnFraction = (pixels - background) / pixels;
      const content = canvas.dataset.content;
      return {
        done: content !== 'empty' && drawnFraction >= 0.002,
        seen: `${canvas.width}x${canvas.height}, content "${content}", ${(drawnFraction * 100).toFixed(2)}% drawn`,
      };
    }),
  );
  log('live canvas has content');

  await saveScreenshot(page, '');
}

async function launchChromium() {
  try {
    return await chromium.launch({
      executablePath: options.chromium,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
  } catch (error) {
    throw new TestFailure(`could not start Chromium at ${options.chromium} (set CHROMIUM): ${error.message}`);
  }
}

/** Polls probe() until it returns done; probe returns {done, seen, failed?}: `failed` stops the wait at once. */
async function waitFor(what, probe) {
  let last = { done: false, seen: 'nothing yet' };
  for (;;) {
    last = await probe();
    if (last.done) return;
    if (last.failed) throw new TestFailure(`while waiting for ${what}: ${last.seen}`);
    if (Date.now() > deadlineMs) {
      throw new TestFailure(`timed out (TIMEOUT_S=${options.timeoutS}) waiting for ${what}; last saw: ${last.seen}`);
    }
    await sleep(250);
  }
}

/** Checked from here rather than the page, so that "the model is still loading" reads as that, not as a UI bug. */
async function waitForReadiness() {
  await waitFor(`${options.url}/readyz to answer 200`, async () => {
    try {
      const response = await fetch(new URL('/readyz', options.url));
      return { done: response.status === 200, seen: `${response.status} ${await response.text()}` };
    } catch (error) {
      return { done: false, seen: `no answer (${error.cause?.code ?? error.message})` };
    }
  });
}

function collectBrowserErrors(page) {
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = `console: ${message.text()} (${message.location().url ?? ''})`;
    if (!tokenEntered && message.text().includes('status of 401')) return;
    browserErrors.push(text);
  });
  page.on('pageerror', (error) => browserErrors.push(`page error: ${error.message}`));
}

async function pageState(page) {
  return page.evaluate(() => {
    const text = (testId) => document.querySelector(`[data-testid=${testId}]`)?.textContent?.trim() ?? null;
    const visible = (testId) => {
      const element = document.querySelector(`[data-testid=${testId}]`);
      return element && !element.hidden ? element.textContent.trim() : null;
    };
    return {
      readiness: text('readiness'),
      authMessage: visible('auth-message'),
      notice: visible('notice'),
      addStreamError: text('add-stream-error'),
      streams: [...document.querySelectorAll('[data-testid=stream-row]')].map((row) =>
        row.innerText.trim().replace(/\s*\n+\s*/g, ' | '),
      ),
      live: {
        stream: text('live-title'),
        state: text('live-state'),
        connection: text('live-connection'),
        status: visible('live-status'),
      },
      frame: text('live-frame'),
      heartbeat: text('live-heartbeat'),
      repCounts: [...document.querySelectorAll('[data-testid=rep-count]')].map((e) => e.textContent),
      historyRows: document.querySelectorAll('[data-testid=history-row]').length,
    };
  });
}

async function saveScreenshot(page, kind) {
  if (!options.screenshot) return;
  try {
    await page.screenshot({ path: options.screenshot, fullPage: true });
    log(`${kind}screenshot saved to ${options.screenshot}`);
  } catch (error) {
    console.error(`could not save the ${kind}screenshot: ${error.message}`);
  }
}

async function deleteStream() {
  try {
    const headers = options.token ? { Authorization: `Bearer ${options.token}` } : {};
    const path = `/api/v1/streams/${encodeURIComponent(options.streamId)}`;
    await fetch(new URL(path, options.url), { method: 'DELETE', headers });
  } catch {
    // The service is gone; nothing to clean.
  }
}

function readOptions(env) {
  const problems = [];
  const number = (name, fallback) => {
    const value = Number(env[name] ?? fallback);
    if (!Number.isFinite(value) || value <= 0) problems.push(`${name} must be a positive number, not "${env[name]}"`);
    return value;
  };
  const parsed = {
    url: env.POSE_URL ?? '',
    token: env.POSE_TOKEN ?? '',
    video: env.VIDEO ?? '',
    exercise: env.EXERCISE || 'squat',
    reps: number('REPS', 3),
    screenshot: env.SCREENSHOT || null,
    timeoutS: number('TIMEOUT_S', 120),
    chromium: env.CHROMIUM || '/usr/bin/chromium',
    streamId: `web-test-${Date.now().toString(36)}`,
    keepStream: env.KEEP_STREAM === '1',
  };
  if (!/^https?:\/\//.test(parsed.url)) problems.push('POSE_URL must be the service, e.g. http://127.0.0.1:8400');
  if (!parsed.video.startsWith('/')) problems.push('VIDEO must be the absolute path of a video the service may read');
  if (problems.length > 0) {
    console.error(`dashboard test: ${problems.join('; ')}`);
    process.exit(1);
  }
  return parsed;
}

function log(message) {
  console.log(`[${elapsedS().padStart(6)} s] ${message}`);
}

function elapsedS() {
  return ((Date.now() - startedMs) / 1000).toFixed(1);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
