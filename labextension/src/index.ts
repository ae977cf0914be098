/**
 * The exercises panel: a left-sidebar list of the problems with their status in the gradebook,
 * opening a problem's notebook in one click, and a Submit button that grades the current
 * notebook's `%%solution` cell in the sandbox and shows the verdicts.
 *
 * The server side is the `runner.jupyter.panel` server extension (`/grader/api/...`).
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { PathExt, URLExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

const PANEL_ID = 'diffusion-grader-panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 3h12l4 4v14H4z M15 4v4h4" fill="none" stroke="#616161" stroke-width="1.6"/>
    <path d="M7.5 13.5l3 3 6-7" fill="none" stroke="#616161" stroke-width="2"/>
  </g>
</svg>`;

const graderIcon = new LabIcon({ name: 'diffusion-grader:icon', svgstr: ICON_SVG });

interface IProblem {
  key: string;
  id: number;
  title: string;
  difficulty: string;
  status: 'not started' | 'attempted' | 'solved';
  best_score: number | null;
  max_score: number | null;
  attempts: number;
}

interface ITestVerdict {
  name: string;
  status: string;
  score: number;
  max_score: number;
  message: string;
  visibility: 'visible' | 'hidden';
}

interface IResult {
  problem: string;
  submission_id: number | null;
  status: string;
  score: number;
  max_score: number;
  backend: string;
  duration_s: number;
  tests: ITestVerdict[];
}

class ApiError extends Error {}

async function api<T>(endpoint: string, body?: unknown): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'grader', 'api', endpoint);
  const init: RequestInit =
    body === undefined ? { method: 'GET' } : { method: 'POST', body: JSON.stringify(body) };
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    throw new ApiError(data.message || `${response.status} ${response.statusText}`);
  }
  return data as T;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

function points(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2).replace(/0+$/, '');
}

function statusText(p: IProblem): string {
  if (p.status === 'attempted' && p.best_score !== null && p.max_score !== null) {
    return `${points(p.best_score)}/${points(p.max_score)}`;
  }
  return p.status;
}

/** The problem a notebook is for: its `grader.problem` metadata, else its `%%solution ID` cell. */
function notebookProblem(panel: NotebookPanel): string | null {
  const model = panel.content.model;
  if (!model) {
    return null;
  }
  const meta = model.getMetadata('grader') as { problem?: string } | undefined;
  if (meta && meta.problem) {
    return meta.problem;
  }
  for (let i = 0; i < model.cells.length; i++) {
    const source = model.cells.get(i).sharedModel.getSource();
    const match = /^%%solution[ \t]+(\S+)/.exec(source);
    if (match) {
      return match[1];
    }
  }
  return null;
}

class ExercisesPanel extends Widget {
  constructor(
    private app: JupyterFrontEnd,
    private tracker: INotebookTracker
  ) {
    super();
    this.id = PANEL_ID;
    this.addClass('dg-panel');
    this.title.icon = graderIcon;
    this.title.caption = 'Exercises';

    const header = el('div', 'dg-header');
    header.appendChild(el('h2', 'dg-heading', 'Exercises'));
    const refresh = el('button', 'dg-refresh jp-Button jp-mod-minimal', '↻');
    refresh.title = 'Refresh the status from the gradebook';
    refresh.addEventListener('click', () => void this.refresh());
    header.appendChild(refresh);
    this.node.appendChild(header);

    this.list = el('ul', 'dg-problems');
    this.node.appendChild(this.list);

    const current = el('div', 'dg-current-box');
    current.appendChild(el('div', 'dg-current-caption', 'Current notebook'));
    this.currentLabel = el('div', 'dg-current-label');
    this.submitButton = el('button', 'dg-submit jp-Button jp-mod-styled jp-mod-accept', 'Submit');
    this.submitButton.title =
      "Save the notebook, then grade its %%solution cell with the public and hidden tests";
    this.submitButton.addEventListener('click', () => void this.submit());
    current.appendChild(this.currentLabel);
    current.appendChild(this.submitButton);
    this.node.appendChild(current);

    this.message = el('div', 'dg-message');
    this.node.appendChild(this.message);
    this.resultBox = el('div', 'dg-result');
    this.node.appendChild(this.resultBox);

    tracker.currentChanged.connect(() => this.showCurrent());
    this.showCurrent();
  }

  /** Reload the problems and their status. */
  async refresh(): Promise<void> {
    try {
      const data = await api<{ problems: IProblem[] }>('problems');
      this.problems = data.problems;
      this.renderList();
    } catch (err) {
      this.say(`Could not list the problems: ${(err as Error).message}`, 'error');
    }
  }

  /** Open (making it the first time) the problem's notebook. */
  async open(key: string): Promise<void> {
    try {
      const data = await api<{ path: string; created: boolean }>('open', { problem: key });
      await this.app.commands.execute('docmanager:open', {
        path: data.path,
        factory: 'Notebook'
      });
      this.say(data.created ? `Made ${data.path}` : `Opened ${data.path}`, 'info');
    } catch (err) {
      this.say(`Could not open ${key}: ${(err as Error).message}`, 'error');
    }
  }

  /** Save the current notebook, grade its `%%solution` cell, show the verdicts, refresh. */
  async submit(): Promise<void> {
    const panel = this.tracker.currentWidget;
    if (!panel) {
      this.say('Open a problem\'s notebook first.', 'error');
      return;
    }
    this.submitButton.disabled = true;
    this.resultBox.textContent = '';
    this.say(`Grading ${panel.context.path} in the sandbox…`, 'busy');
    try {
      await panel.context.ready;
      await panel.context.save();
      const data = await api<{ result: IResult; problem: IProblem }>('submit', {
        path: panel.context.path
      });
      this.say('', 'info');
      this.renderResult(data.result);
      await this.refresh();
      this.resultBox.scrollIntoView({ block: 'nearest' });
    } catch (err) {
      this.say((err as Error).message, 'error');
    } finally {
      this.showCurrent();
    }
  }

  private say(text: string, kind: 'info' | 'error' | 'busy'): void {
    this.message.textContent = text;
    this.message.className = `dg-message dg-message-${kind}`;
  }

  private showCurrent(): void {
    const panel = this.tracker.currentWidget;
    if (panel) {
      const key = notebookProblem(panel);
      this.currentKey = key;
      this.currentLabel.textContent = PathExt.basename(panel.context.path);
      this.currentLabel.title = panel.context.path;
      this.submitButton.disabled = false;
      this.submitButton.textContent = key ? `Submit ${key.split('-')[0]}` : 'Submit';
      if (!key) {
        void panel.context.ready.then(() => this.showCurrent());
      }
    } else {
      this.currentKey = null;
      this.currentLabel.textContent = 'none: open a problem above';
      this.currentLabel.title = '';
      this.submitButton.disabled = true;
      this.submitButton.textContent = 'Submit';
    }
    this.renderList();
  }

  private renderList(): void {
    this.list.textContent = '';
    for (const p of this.problems) {
      const item = el('li', 'dg-problem');
      item.dataset.key = p.key;
      item.dataset.status = p.status;
      if (p.key === this.currentKey) {
        item.classList.add('dg-current');
      }
      const button = el('button', 'dg-open');
      button.title = `Open ${p.key}.ipynb`;
      button.appendChild(el('span', 'dg-id', String(p.id)));
      button.appendChild(el('span', 'dg-title', p.title));
      button.addEventListener('click', () => void this.open(p.key));
      item.appendChild(button);
      const meta = el('div', 'dg-meta');
      meta.appendChild(el('span', `dg-difficulty`, p.difficulty));
      const badge = el('span', `dg-badge dg-badge-${p.status.replace(' ', '-')}`, statusText(p));
      if (p.attempts) {
        badge.title = `${p.attempts} graded submission${p.attempts === 1 ? '' : 's'}`;
      }
      meta.appendChild(badge);
      item.appendChild(meta);
      this.list.appendChild(item);
    }
  }

  private renderResult(result: IResult): void {
    this.resultBox.textContent = '';
    const full = result.max_score > 0 && result.score >= result.max_score;
    const heading = el(
      'div',
      `dg-score ${full ? 'dg-score-full' : 'dg-score-partial'}`,
      `${result.problem}: ${points(result.score)} / ${points(result.max_score)}`
    );
    this.resultBox.appendChild(heading);
    const table = el('table', 'dg-verdicts');
    const head = el('tr');
    for (const col of ['test', 'verdict', 'pts']) {
      head.appendChild(el('th', '', col));
    }
    table.appendChild(el('thead')).appendChild(head);
    const body = el('tbody');
    for (const t of result.tests) {
      const row = el('tr', `dg-verdict dg-verdict-${t.status}`);
      row.dataset.status = t.status;
      const name = el('td', 'dg-test');
      // let long test names break after their underscores, not anywhere
      t.name.split('_').forEach((part, i, parts) => {
        name.appendChild(document.createTextNode(i < parts.length - 1 ? `${part}_` : part));
        if (i < parts.length - 1) {
          name.appendChild(el('wbr'));
        }
      });
      if (t.visibility === 'hidden') {
        name.appendChild(el('span', 'dg-hidden', ' (hidden)'));
      }
      row.appendChild(name);
      row.appendChild(el('td', 'dg-status', t.status));
      row.appendChild(el('td', 'dg-points', `${points(t.score)}/${points(t.max_score)}`));
      body.appendChild(row);
      if (t.message) {
        const msg = el('tr', 'dg-verdict-message');
        const cell = el('td');
        cell.colSpan = 3;
        cell.appendChild(el('pre', '', t.message));
        msg.appendChild(cell);
        body.appendChild(msg);
      }
    }
    table.appendChild(body);
    this.resultBox.appendChild(table);
    const id = result.submission_id ? `submission #${result.submission_id}, ` : '';
    this.resultBox.appendChild(
      el('small', 'dg-footnote', `${id}${result.backend} sandbox, ${result.duration_s.toFixed(1)} s`)
    );
  }

  private problems: IProblem[] = [];
  private currentKey: string | null = null;
  private list: HTMLUListElement;
  private currentLabel: HTMLDivElement;
  private submitButton: HTMLButtonElement;
  private message: HTMLDivElement;
  private resultBox: HTMLDivElement;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'diffusion-grader-lab:panel',
  description: 'The exercises panel: problems, their status, and Submit.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    labShell: ILabShell | null,
    palette: ICommandPalette | null
  ) => {
    const panel = new ExercisesPanel(app, tracker);
    app.shell.add(panel, 'left', { rank: 650 });
    void panel.refresh();
    if (labShell) {
      // back on the panel: the gradebook may have changed (a submit() from a notebook, the CLI)
      labShell.activeChanged.connect((_, args) => {
        if (args.newValue === panel) {
          void panel.refresh();
        }
      });
    }
    app.commands.addCommand('diffusion-grader:submit', {
      label: 'Exercises: Submit the Current Notebook',
      execute: () => panel.submit()
    });
    app.commands.addCommand('diffusion-grader:show', {
      label: 'Exercises: Show the Panel',
      execute: () => app.shell.activateById(PANEL_ID)
    });
    if (palette) {
      palette.addItem({ command: 'diffusion-grader:submit', category: 'Exercises' });
      palette.addItem({ command: 'diffusion-grader:show', category: 'Exercises' });
    }
  }
};

export default plugin;
