import { createApp } from "vue";
import { createRouter, createWebHistory } from "vue-router";
import App from "./App.vue";
import DashboardView from "./views/DashboardView.vue";
import JobsView from "./views/JobsView.vue";
import FileView from "./views/FileView.vue";
import AlertsView from "./views/AlertsView.vue";
import RunsView from "./views/RunsView.vue";
import ActionsView from "./views/ActionsView.vue";
import TransfersView from "./views/TransfersView.vue";
import QualityView from "./views/QualityView.vue";

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", component: DashboardView },
    { path: "/jobs", component: JobsView },
    { path: "/files/:file", component: FileView, props: true },
    { path: "/alerts", component: AlertsView },
    { path: "/runs", component: RunsView },
    { path: "/actions", component: ActionsView },
    { path: "/transfers", component: TransfersView },
    { path: "/quality", component: QualityView },
  ],
});

createApp(App).use(router).mount("#app");
