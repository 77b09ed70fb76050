import { createApp } from "vue";
import { createRouter, createWebHistory } from "vue-router";
import App from "./App.vue";
import DashboardView from "./views/DashboardView.vue";
import JobsView from "./views/JobsView.vue";
import FileView from "./views/FileView.vue";
import AlertsView from "./views/AlertsView.vue";

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", component: DashboardView },
    { path: "/jobs", component: JobsView },
    { path: "/files/:file", component: FileView, props: true },
    { path: "/alerts", component: AlertsView },
  ],
});

createApp(App).use(router).mount("#app");
