/** TensorFlow.js core with the gradients the engine needs registered; the engine imports tf from here. */
import './gradients.ts';

export * from '@tensorflow/tfjs-core';
