// OSWorld's vscode_config getter types a command's title into the command palette and then reads
// the file that command wrote. OpenProject: the name of the folder the window has open (the first
// one of a multi-root workspace), or an empty file when none is open, at ~/OpenProject.txt.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const vscode = require("vscode");

function openProject() {
  const folders = vscode.workspace.workspaceFolders || [];
  const name = folders.length ? path.basename(folders[0].uri.fsPath) : "";
  fs.writeFileSync(path.join(os.homedir(), "OpenProject.txt"), name);
}

function activate(context) {
  context.subscriptions.push(vscode.commands.registerCommand("cua-eval.OpenProject", openProject));
}

module.exports = { activate, deactivate() {} };
