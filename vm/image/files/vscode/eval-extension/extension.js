// OSWorld's vscode_config getter types a command's title into the command palette and then reads
// the file that command wrote. OpenProject: the name of the folder the window has open (the first
// one of a multi-root workspace), or an empty file when none is open, at ~/OpenProject.txt.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const vscode = require("vscode");

function folderName() {
  const folders = vscode.workspace.workspaceFolders || [];
  return folders.length ? path.basename(folders[0].uri.fsPath) : "";
}

function openProject() {
  fs.writeFileSync(path.join(os.homedir(), "OpenProject.txt"), folderName());
}

// Active from startup (onStartupFinished, after the workbench has restored its editors): the marker
// file tells a task's setup that keys now reach VS Code. While the workbench loads, keys reach the
// browser instead (Ctrl+H opens its history, Ctrl+S its Save dialog).
// It holds the open folder's name (empty without one): after a window reloads into another folder,
// a reader can tell the new extension host from the old one.
function markReady() {
  const dir = process.env.XDG_RUNTIME_DIR || os.tmpdir();
  try {
    fs.writeFileSync(path.join(dir, "vscode-ready"), folderName());
  } catch (e) {
    console.error(`cua-eval: cannot write the ready marker: ${e}`);
  }
}

function activate(context) {
  context.subscriptions.push(vscode.commands.registerCommand("cua-eval.OpenProject", openProject));
  markReady();
}

module.exports = { activate, deactivate() {} };
