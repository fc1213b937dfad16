// Renderer entry. Svelte 5 mounts components with mount(); `new App()` is the legacy API.
import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';

const target = document.getElementById('app');
if (!target) throw new Error('renderer/index.html lost its #app element');
mount(App, { target });
