/** `npm run chart`: redraws docs/img/shutdown.svg from docs/img/shutdown-scrape.json (run from the repository root). */
import { readFileSync, writeFileSync } from 'node:fs';
import { CHART_DATA_PATH, CHART_PATH, renderShutdownChart, type ScrapeRecord } from './shutdown-chart.js';

writeFileSync(CHART_PATH, renderShutdownChart(JSON.parse(readFileSync(CHART_DATA_PATH, 'utf8')) as ScrapeRecord));
console.log(`wrote ${CHART_PATH} from ${CHART_DATA_PATH}`);
