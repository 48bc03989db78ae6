import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { theme } from './lib/theme.svelte';

const target = document.getElementById('app');
if (!target) {
  throw new Error('Vigil UI: missing #app mount point');
}

// Apply the theme before the first paint so there is no flash of the wrong one.
theme.init();

export default mount(App, { target });
